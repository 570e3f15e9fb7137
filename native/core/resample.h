// Pillow's convolution resampler (Image.resize with BILINEAR, BICUBIC or LANCZOS on 8-bit RGB),
// which torchvision's Resize and RandomResizedCrop run on PIL images; the C++ twin of
// lib/image/resample.ts, with the same arithmetic and so the same bytes:
// - a separable filter, stretched by the scale when reducing (the antialiasing), centred at
//   (x + 0.5) * scale in input pixels, cut at the image edges and renormalised there;
// - weights normalised to sum 1, then fixed point with 22 fractional bits, rounded half away
//   from zero;
// - the horizontal pass first, rounded and clipped to 8 bits, then the vertical pass; an axis
//   whose size does not change is not filtered.
// Only the output pixels of a window are computed. Pixels are RGBX (4 bytes, the 4th ignored), the
// layout libjpeg-turbo decodes to at no extra cost, so that one pixel is one 4-lane vector.
// Plain loops on the calling thread: no LibTorch, no OpenMP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace resnet::image {

enum class Filter { Bilinear, Bicubic, Lanczos };

// Rows of RGBX pixels: pixel (x, y) at data + y * stride + 4 * x. `data` must be readable for
// stride * (height - 1) + 4 * width bytes.
struct RgbxView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  ptrdiff_t stride = 0;
};

// The window [top, top + height) x [left, left + width) of the resized image.
struct Window {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};

// Called with each output row of the window, top to bottom: `rgbx` holds window.width pixels.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual void row(int y, const uint8_t* rgbx) = 0;
};

// Pillow's resize of `src` to out_width x out_height, window `win` only, row by row into `sink`.
// Throws resnet::Error (invalid argument) when the window is not inside the resized image.
void resample(const RgbxView& src, int out_width, int out_height, Filter filter, const Window& win, RowSink& sink);

// torchvision's ToTensor + Normalize of RGBX rows into a C x H x W float buffer, through a table
// per channel (3 x 256 floats: lib/image/preprocess-options.ts computes torchvision's float32
// arithmetic into them), optionally mirrored left to right (RandomHorizontalFlip).
class NormalizeSink : public RowSink {
 public:
  NormalizeSink(float* out, int height, int width, const float* tables, bool flip)
      : out_(out), height_(height), width_(width), tables_(tables), flip_(flip) {}
  void row(int y, const uint8_t* rgbx) override;

 private:
  float* out_;
  int height_;
  int width_;
  const float* tables_;
  bool flip_;
};

}  // namespace resnet::image
