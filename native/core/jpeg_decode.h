// JPEG decoding for the streaming data sets' fast path: libjpeg-turbo (the decoder Pillow links,
// so the same pixels as Image.open(f).convert('RGB')), then crop, Pillow's resize (resample.h),
// optional mirror and torchvision's normalisation, into a float C x H x W buffer. One call, on
// the calling thread, no LibTorch and no OpenMP: each streaming worker thread runs its own.
//
// Built only with libjpeg-turbo's headers (RESNET_WITH_LIBJPEG_TURBO; Debian: libjpeg62-turbo-dev).
// Without them jpeg_decoder_compiled() is false and the other functions throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "resample.h"

namespace resnet::image {

bool jpeg_decoder_compiled();

// Whether the bytes start as a JPEG does (SOI followed by a marker).
bool looks_like_jpeg(const uint8_t* data, size_t size);

struct JpegInfo {
  // Upright size: after the EXIF orientation (swapped for orientations 5-8).
  int width = 0;
  int height = 0;
  // EXIF orientation, 1-8 (1 when absent or invalid).
  int orientation = 1;
  // 3 = YCbCr or RGB, 1 = grayscale, 4 = CMYK or YCCK.
  int components = 0;
  // Whether decode_jpeg can decode it: 8-bit grayscale, YCbCr or RGB. CMYK and YCCK are not
  // (Pillow's CMYK -> RGB formula is lib/image/preprocess.ts's business).
  bool decodable = false;
};

// Reads the header (SOF and the EXIF orientation). Throws resnet::Error (invalid argument) with
// libjpeg's message when the header is not a readable JPEG header.
JpegInfo read_jpeg_info(const uint8_t* data, size_t size);

// What decode_jpeg computes from the upright image: the box [top, top + box_height) x
// [left, left + box_width) is cropped (PIL's Image.crop), resized to resized_width x
// resized_height (Pillow's Image.resize with `filter`), and the window of that resized image at
// (window_top, window_left) of out_height x out_width is normalised through `tables`
// (3 x 256 floats, one table per channel), mirrored left to right when `flip`.
//   RandomResizedCrop: box = the drawn box, resized = window = the output size.
//   Resize + CenterCrop: box = the whole image, resized = the shorter side's size, window = the crop.
struct JpegTransform {
  int box_top = 0;
  int box_left = 0;
  int box_height = 0;
  int box_width = 0;
  int resized_height = 0;
  int resized_width = 0;
  int window_top = 0;
  int window_left = 0;
  int out_height = 0;
  int out_width = 0;
  Filter filter = Filter::Bilinear;
  bool flip = false;
  const float* tables = nullptr;
};

// Decodes `data` and writes 3 x out_height x out_width floats to `out`. Throws resnet::Error
// (invalid argument) for a corrupt or truncated JPEG ("Premature end of JPEG file": as Pillow,
// a truncated file is an error; recoverable damage such as extraneous bytes is not), for a box
// or window outside the image, or for an image that is not decodable (JpegInfo::decodable).
void decode_jpeg(const uint8_t* data, size_t size, const JpegTransform& transform, float* out);

}  // namespace resnet::image
