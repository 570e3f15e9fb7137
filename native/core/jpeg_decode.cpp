#include "jpeg_decode.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "types.h"

#ifdef RESNET_WITH_LIBJPEG_TURBO
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE

#include <jerror.h>
#include <jpeglib.h>
#endif

namespace resnet::image {

bool looks_like_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

#ifndef RESNET_WITH_LIBJPEG_TURBO

bool jpeg_decoder_compiled() { return false; }

JpegInfo read_jpeg_info(const uint8_t*, size_t) {
  throw Error(codes::kNative, "This build of the addon has no JPEG decoder (it was built without libjpeg-turbo's headers)");
}

void decode_jpeg(const uint8_t*, size_t, const JpegTransform&, float*) {
  throw Error(codes::kNative, "This build of the addon has no JPEG decoder (it was built without libjpeg-turbo's headers)");
}

#else

bool jpeg_decoder_compiled() { return true; }

namespace {

// libjpeg reports a fatal error by calling error_exit, which must not return: it longjmps back to
// the setjmp of the function that called into libjpeg (read_header, decode_band below). Those
// functions hold no C++ object that needs destruction, and longjmp skips only libjpeg's C frames.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are recoverable damage, which Pillow and sharp (failOn 'error') decode
// through, except the end of the data before the end of the image: Pillow refuses a truncated
// file ("image file is truncated") and so does sharp, so it is an error here too.
extern "C" void on_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
    (*cinfo->err->format_message)(cinfo, err->message);
    std::strncat(err->message, " (the data is truncated)", sizeof err->message - std::strlen(err->message) - 1);
    std::longjmp(err->jump, 1);
  }
  cinfo->err->num_warnings++;
}

extern "C" void on_output_message(j_common_ptr) {}  // nothing on stderr

struct Decoder {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  bool created = false;

  Decoder() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.pub.output_message = on_output_message;
  }
  ~Decoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
};

// Header, with APP1 (EXIF) saved. False, with the message in d->err.message, when libjpeg failed.
bool read_header(Decoder* d, const uint8_t* data, size_t size) {
  if (setjmp(d->err.jump)) return false;
  d->created = true;  // jpeg_destroy_decompress is safe on a half-created decompressor
  jpeg_create_decompress(&d->cinfo);
  jpeg_mem_src(&d->cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&d->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&d->cinfo, TRUE);
  return true;
}

constexpr int kChunk = 16;

// Decodes every scanline as RGBX (Pillow's settings: the accurate integer IDCT, fancy
// upsampling); rows [band_top, band_top + band_rows) land in `band`, the others in `scratch`
// (kChunk rows). All rows are decoded so that a truncated or damaged end is seen as Pillow sees it.
bool decode_band(Decoder* d, uint8_t* band, int band_top, int band_rows, uint8_t* scratch, size_t row_bytes) {
  if (setjmp(d->err.jump)) return false;
  j_decompress_ptr c = &d->cinfo;
  c->out_color_space = JCS_EXT_RGBX;
  c->dct_method = JDCT_ISLOW;
  c->do_fancy_upsampling = TRUE;
  jpeg_start_decompress(c);
  while (c->output_scanline < c->output_height) {
    JSAMPROW rows[kChunk];
    const int y = static_cast<int>(c->output_scanline);
    const int n = std::min<int>(kChunk, static_cast<int>(c->output_height) - y);
    for (int i = 0; i < n; i++) {
      const int r = y + i - band_top;
      rows[i] = r >= 0 && r < band_rows ? band + static_cast<size_t>(r) * row_bytes : scratch + static_cast<size_t>(i) * row_bytes;
    }
    jpeg_read_scanlines(c, rows, static_cast<JDIMENSION>(n));
  }
  jpeg_finish_decompress(c);
  return true;
}

// The orientation tag (0x0112) of IFD0 in an APP1 "Exif" payload; 1 when absent or out of range.
int exif_orientation(const uint8_t* p, size_t n) {
  if (n < 6 + 8 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = p + 6;
  const size_t len = n - 6;
  bool little;
  if (t[0] == 'I' && t[1] == 'I') little = true;
  else if (t[0] == 'M' && t[1] == 'M') little = false;
  else return 1;
  auto u16 = [&](size_t o) -> uint32_t { return little ? t[o] | t[o + 1] << 8 : t[o] << 8 | t[o + 1]; };
  auto u32 = [&](size_t o) -> uint32_t { return little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd > len || len - ifd < 2) return 1;
  const uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; i++) {
    const size_t e = ifd + 2 + 12 * static_cast<size_t>(i);
    if (e + 12 > len) break;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2);
    const uint32_t value = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : 0;
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

JpegInfo info_of(const jpeg_decompress_struct& c) {
  JpegInfo info;
  for (jpeg_saved_marker_ptr m = c.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      info.orientation = exif_orientation(m->data, m->data_length);
      break;
    }
  }
  const int w = static_cast<int>(c.image_width);
  const int h = static_cast<int>(c.image_height);
  const bool transposed = info.orientation >= 5;
  info.width = transposed ? h : w;
  info.height = transposed ? w : h;
  info.components = c.num_components;
  info.decodable = c.data_precision == 8 && ((c.jpeg_color_space == JCS_GRAYSCALE && c.num_components == 1) ||
                                             ((c.jpeg_color_space == JCS_YCbCr || c.jpeg_color_space == JCS_RGB) && c.num_components == 3));
  return info;
}

// Where the upright pixel (ux, uy) is in the stored image of stored_width x stored_height, for
// each EXIF orientation (what sharp's rotate() undoes).
inline void stored_position(int orientation, int ux, int uy, int stored_width, int stored_height, int* sx, int* sy) {
  switch (orientation) {
    case 2: *sx = stored_width - 1 - ux; *sy = uy; break;
    case 3: *sx = stored_width - 1 - ux; *sy = stored_height - 1 - uy; break;
    case 4: *sx = ux; *sy = stored_height - 1 - uy; break;
    case 5: *sx = uy; *sy = ux; break;
    case 6: *sx = uy; *sy = stored_height - 1 - ux; break;
    case 7: *sx = stored_width - 1 - uy; *sy = stored_height - 1 - ux; break;
    case 8: *sx = stored_width - 1 - uy; *sy = ux; break;
    default: *sx = ux; *sy = uy; break;
  }
}

std::string size_text(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

[[noreturn]] void invalid(const std::string& message) { throw Error(codes::kInvalidArgument, message); }

}  // namespace

JpegInfo read_jpeg_info(const uint8_t* data, size_t size) {
  Decoder d;
  if (!read_header(&d, data, size)) invalid(d.err.message);
  return info_of(d.cinfo);
}

void decode_jpeg(const uint8_t* data, size_t size, const JpegTransform& tf, float* out) {
  if (tf.tables == nullptr || out == nullptr) invalid("Expected normalisation tables and an output buffer");
  Decoder d;
  if (!read_header(&d, data, size)) invalid(d.err.message);
  const JpegInfo info = info_of(d.cinfo);
  if (!info.decodable) {
    invalid("Expected an 8-bit grayscale, YCbCr or RGB JPEG but this one has " + std::to_string(info.components) + " components of color space " +
            std::to_string(static_cast<int>(d.cinfo.jpeg_color_space)));
  }
  if (tf.box_height <= 0 || tf.box_width <= 0 || tf.box_top < 0 || tf.box_left < 0 || tf.box_top + tf.box_height > info.height ||
      tf.box_left + tf.box_width > info.width) {
    invalid("Expected a crop box inside the " + size_text(info.width, info.height) + " image but received " + size_text(tf.box_width, tf.box_height) +
            " at (" + std::to_string(tf.box_left) + ", " + std::to_string(tf.box_top) + ")");
  }
  if (tf.resized_height <= 0 || tf.resized_width <= 0 || tf.out_height <= 0 || tf.out_width <= 0) invalid("Expected positive sizes");

  // The stored rows the box covers (its corners, mapped).
  const int stored_width = static_cast<int>(d.cinfo.image_width);
  const int stored_height = static_cast<int>(d.cinfo.image_height);
  int x0, y0, x1, y1;
  stored_position(info.orientation, tf.box_left, tf.box_top, stored_width, stored_height, &x0, &y0);
  stored_position(info.orientation, tf.box_left + tf.box_width - 1, tf.box_top + tf.box_height - 1, stored_width, stored_height, &x1, &y1);
  const int band_top = std::min(y0, y1);
  const int band_rows = std::max(y0, y1) - band_top + 1;

  const size_t row_bytes = static_cast<size_t>(stored_width) * 4;
  // +4: the resampler reads whole 4-byte pixels; nothing past the last row is read, but keep slack.
  std::vector<uint8_t> band(static_cast<size_t>(band_rows) * row_bytes + 4);
  std::vector<uint8_t> scratch(static_cast<size_t>(kChunk) * row_bytes);
  if (!decode_band(&d, band.data(), band_top, band_rows, scratch.data(), row_bytes)) invalid(d.err.message);

  RgbxView view;
  std::vector<uint8_t> upright;
  if (info.orientation == 1) {
    view = {band.data() + static_cast<size_t>(tf.box_top - band_top) * row_bytes + 4 * static_cast<size_t>(tf.box_left), tf.box_width, tf.box_height,
            static_cast<ptrdiff_t>(row_bytes)};
  } else {
    // The box, turned upright: a lossless reordering of pixels, as sharp's rotate() then extract().
    upright.resize(static_cast<size_t>(tf.box_width) * tf.box_height * 4);
    for (int y = 0; y < tf.box_height; y++) {
      uint8_t* dst = upright.data() + static_cast<size_t>(y) * tf.box_width * 4;
      for (int x = 0; x < tf.box_width; x++) {
        int sx, sy;
        stored_position(info.orientation, tf.box_left + x, tf.box_top + y, stored_width, stored_height, &sx, &sy);
        std::memcpy(dst + 4 * x, band.data() + static_cast<size_t>(sy - band_top) * row_bytes + 4 * static_cast<size_t>(sx), 4);
      }
    }
    view = {upright.data(), tf.box_width, tf.box_height, static_cast<ptrdiff_t>(tf.box_width) * 4};
  }
  NormalizeSink sink(out, tf.out_height, tf.out_width, tf.tables, tf.flip);
  resample(view, tf.resized_width, tf.resized_height, tf.filter, Window{tf.window_top, tf.window_left, tf.out_height, tf.out_width}, sink);
}

#endif  // RESNET_WITH_LIBJPEG_TURBO

}  // namespace resnet::image
