#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "types.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace resnet::image {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
constexpr double kOne = static_cast<double>(1 << kPrecisionBits);

// Pillow's filters (libImaging/Resample.c), written as lib/image/resample.ts writes them.
double filter_support(Filter filter) {
  switch (filter) {
    case Filter::Bilinear: return 1;
    case Filter::Bicubic: return 2;
    case Filter::Lanczos: return 3;
  }
  return 1;
}

double sinc(double x) {
  if (x == 0) return 1;
  const double px = x * M_PI;
  return std::sin(px) / px;
}

double filter_weight(Filter filter, double x) {
  switch (filter) {
    case Filter::Bilinear: return std::max(0.0, 1 - std::fabs(x));
    case Filter::Bicubic: {
      // Keys' cubic with a = -0.5 (Catmull-Rom), as Pillow's BICUBIC.
      const double a = -0.5;
      const double t = std::fabs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    }
    case Filter::Lanczos: return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  }
  return 0;
}

// Fixed-point taps of the outputs [first, first + n) of an axis resized from in_size to out_size.
struct Taps {
  std::vector<int32_t> start;  // first input index of each output
  std::vector<int32_t> count;  // taps of each output
  std::vector<int32_t> weights;  // `stride` per output, unused ones 0
  int stride = 0;
  // The weights split for the SSE2 horizontal pass (w = hi * 2^11 + lo), as int16 pairs of
  // consecutive taps packed in an int32: (hi_t, hi_t+1), (lo_t, lo_t+1), `pair_stride` per output.
  std::vector<int32_t> pairs_hi;
  std::vector<int32_t> pairs_lo;
  int pair_stride = 0;
};

inline int32_t pack_pair(int32_t a, int32_t b) { return static_cast<int32_t>(static_cast<uint32_t>(a & 0xFFFF) | static_cast<uint32_t>(b) << 16); }

// Fills pairs_hi / pairs_lo from weights (an odd count's last pair has a 0 partner).
[[maybe_unused]] void split_pairs(Taps& t, int n) {
  t.pair_stride = (t.stride + 1) / 2;
  t.pairs_hi.assign(static_cast<size_t>(n) * t.pair_stride, 0);
  t.pairs_lo.assign(static_cast<size_t>(n) * t.pair_stride, 0);
  for (int i = 0; i < n; i++) {
    const int32_t* k = t.weights.data() + static_cast<size_t>(i) * t.stride;
    for (int q = 0; 2 * q < t.count[i]; q++) {
      const int32_t a = k[2 * q];
      const int32_t b = 2 * q + 1 < t.count[i] ? k[2 * q + 1] : 0;
      t.pairs_hi[static_cast<size_t>(i) * t.pair_stride + q] = pack_pair(a >> 11, b >> 11);
      t.pairs_lo[static_cast<size_t>(i) * t.pair_stride + q] = pack_pair(a & 2047, b & 2047);
    }
  }
}

Taps make_taps(int in_size, int out_size, Filter filter, int first, int n) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_support(filter) * filter_scale;
  Taps t;
  t.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.start.resize(n);
  t.count.resize(n);
  t.weights.assign(static_cast<size_t>(n) * t.stride, 0);
  const double inverse = 1 / filter_scale;
  std::vector<double> w(t.stride);
  for (int i = 0; i < n; i++) {
    const double center = (first + i + 0.5) * scale;
    // Truncation, as C's (int) cast in Pillow, then clamped to the image.
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi = std::min(in_size, static_cast<int>(center + support + 0.5));
    double sum = 0;
    for (int x = lo; x < hi; x++) {
      const double v = filter_weight(filter, (x - center + 0.5) * inverse);
      w[x - lo] = v;
      sum += v;
    }
    t.start[i] = lo;
    t.count[i] = hi - lo;
    int32_t* k = t.weights.data() + static_cast<size_t>(i) * t.stride;
    for (int j = 0; j < hi - lo; j++) {
      const double v = sum != 0 ? w[j] / sum : w[j];
      k[j] = v < 0 ? static_cast<int32_t>(-0.5 + v * kOne) : static_cast<int32_t>(0.5 + v * kOne);
    }
  }
  return t;
}

inline uint8_t clip8(int32_t sum) {
  const int32_t v = sum >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

#if defined(__SSE2__)
// The horizontal pass with SSE2's pmaddwd (16 x 16 -> 32-bit multiply-adds of lane pairs), exact:
// each 22-bit weight w is split as w = hi * 2^11 + lo (lo in [0, 2^11)), both halves fit int16,
// and sum(v * w) = 2^11 * sum(v * hi) + sum(v * lo) in integers. Two taps at a time: the bytes of
// pixels t and t + 1 interleaved (r_t, r_t+1, g_t, g_t+1, ...) against (hi_t, hi_t+1) pairs. About
// 3x faster than 32-bit lane multiplies, which SSE2 lacks; this pass is most of a resize's cost.
inline __m128i load_pixel(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm_cvtsi32_si128(v);
}

void horizontal_row(const uint8_t* src, const Taps& h, int width, uint8_t* dst) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i half = _mm_set1_epi32(kHalf);
  for (int i = 0; i < width; i++) {
    const uint8_t* p = src + 4 * static_cast<ptrdiff_t>(h.start[i]);
    const int32_t* kh = h.pairs_hi.data() + static_cast<size_t>(i) * h.pair_stride;
    const int32_t* kl = h.pairs_lo.data() + static_cast<size_t>(i) * h.pair_stride;
    const int n = h.count[i];
    __m128i hi = zero;
    __m128i lo = zero;
    int t = 0;
    for (; t + 1 < n; t += 2) {
      const __m128i px = _mm_unpacklo_epi8(_mm_unpacklo_epi8(load_pixel(p + 4 * t), load_pixel(p + 4 * t + 4)), zero);
      hi = _mm_add_epi32(hi, _mm_madd_epi16(px, _mm_set1_epi32(kh[t / 2])));
      lo = _mm_add_epi32(lo, _mm_madd_epi16(px, _mm_set1_epi32(kl[t / 2])));
    }
    if (t < n) {  // the last tap of an odd count; its pair's partner weight is 0 (and not read)
      const __m128i px = _mm_unpacklo_epi8(_mm_unpacklo_epi8(load_pixel(p + 4 * t), zero), zero);
      hi = _mm_add_epi32(hi, _mm_madd_epi16(px, _mm_set1_epi32(kh[t / 2])));
      lo = _mm_add_epi32(lo, _mm_madd_epi16(px, _mm_set1_epi32(kl[t / 2])));
    }
    __m128i sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(hi, 11), lo), half);
    sum = _mm_srai_epi32(sum, kPrecisionBits);
    // Saturating packs to int16 then to uint8: clip8's clamp to [0, 255].
    const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(sum, zero), zero);
    const int32_t out = _mm_cvtsi128_si32(bytes);
    std::memcpy(dst + 4 * i, &out, 4);
  }
}
#else
// Portable: one RGBX pixel as four int32 lanes (GCC/Clang vector extensions).
typedef int32_t Lanes __attribute__((vector_size(16)));
typedef uint8_t Bytes __attribute__((vector_size(4)));

inline Lanes load_pixel(const uint8_t* p) {
  Bytes b;
  std::memcpy(&b, p, 4);
  return __builtin_convertvector(b, Lanes);
}

void horizontal_row(const uint8_t* src, const Taps& h, int width, uint8_t* dst) {
  for (int i = 0; i < width; i++) {
    const uint8_t* p = src + 4 * static_cast<ptrdiff_t>(h.start[i]);
    const int32_t* k = h.weights.data() + static_cast<size_t>(i) * h.stride;
    const int n = h.count[i];
    Lanes acc = {kHalf, kHalf, kHalf, kHalf};
    for (int t = 0; t < n; t++, p += 4) acc += load_pixel(p) * k[t];
    dst[4 * i] = clip8(acc[0]);
    dst[4 * i + 1] = clip8(acc[1]);
    dst[4 * i + 2] = clip8(acc[2]);
    dst[4 * i + 3] = 0;
  }
}
#endif

// One tap of the vertical pass over a row's bytes. Compiled for AVX2 too where the compiler can
// (GCC's function multi-versioning picks at load time): 8 lanes instead of 4, about 3x faster.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void accumulate(int32_t* acc, const uint8_t* in, int32_t w, size_t n) {
  for (size_t c = 0; c < n; c++) acc[c] += in[c] * w;
}

}  // namespace

void resample(const RgbxView& src, int out_width, int out_height, Filter filter, const Window& win, RowSink& sink) {
  if (src.width <= 0 || src.height <= 0 || out_width <= 0 || out_height <= 0 || win.width <= 0 || win.height <= 0 ||
      win.left < 0 || win.top < 0 || win.left + win.width > out_width || win.top + win.height > out_height) {
    throw Error(codes::kInvalidArgument, "Expected a window inside the " + std::to_string(out_width) + "x" + std::to_string(out_height) +
                                             " resized image but received " + std::to_string(win.width) + "x" + std::to_string(win.height) +
                                             " at (" + std::to_string(win.left) + ", " + std::to_string(win.top) + ")");
  }
  const bool vertical = out_height != src.height;
  const bool horizontal = out_width != src.width;
  Taps v;
  // Rows of the source that the vertical pass reads.
  int row_first = win.top;
  int row_end = win.top + win.height;
  if (vertical) {
    v = make_taps(src.height, out_height, filter, win.top, win.height);
    row_first = v.start[0];
    row_end = v.start[win.height - 1] + v.count[win.height - 1];
  }
  const int rows = row_end - row_first;
  const size_t row_bytes = static_cast<size_t>(win.width) * 4;

  // Horizontal pass over those rows, window columns only.
  std::vector<uint8_t> mid;
  const uint8_t* mid_data;
  ptrdiff_t mid_stride;
  if (horizontal) {
    Taps h = make_taps(src.width, out_width, filter, win.left, win.width);
#if defined(__SSE2__)
    split_pairs(h, win.width);
#endif
    mid.resize(static_cast<size_t>(rows) * row_bytes);
    for (int r = 0; r < rows; r++) horizontal_row(src.data + (row_first + r) * src.stride, h, win.width, mid.data() + r * row_bytes);
    mid_data = mid.data();
    mid_stride = static_cast<ptrdiff_t>(row_bytes);
  } else {
    mid_data = src.data + row_first * src.stride + 4 * static_cast<ptrdiff_t>(win.left);
    mid_stride = src.stride;
  }

  if (!vertical) {
    for (int j = 0; j < win.height; j++) sink.row(j, mid_data + j * mid_stride);
    return;
  }
  // Vertical pass, a row at a time: int32 lanes over the row's bytes, which vectorise.
  std::vector<int32_t> acc(row_bytes);
  std::vector<uint8_t> out(row_bytes);
  for (int j = 0; j < win.height; j++) {
    const int first = v.start[j] - row_first;
    const int n = v.count[j];
    const int32_t* k = v.weights.data() + static_cast<size_t>(j) * v.stride;
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int t = 0; t < n; t++) accumulate(acc.data(), mid_data + (first + t) * mid_stride, k[t], row_bytes);
    for (size_t c = 0; c < row_bytes; c++) out[c] = clip8(acc[c]);
    sink.row(j, out.data());
  }
}

void NormalizeSink::row(int y, const uint8_t* rgbx) {
  const size_t plane = static_cast<size_t>(height_) * width_;
  float* r = out_ + static_cast<size_t>(y) * width_;
  float* g = r + plane;
  float* b = g + plane;
  const float* t0 = tables_;
  const float* t1 = tables_ + 256;
  const float* t2 = tables_ + 512;
  if (!flip_) {
    for (int x = 0; x < width_; x++) {
      const uint8_t* p = rgbx + 4 * x;
      r[x] = t0[p[0]];
      g[x] = t1[p[1]];
      b[x] = t2[p[2]];
    }
  } else {
    for (int x = 0, xx = width_ - 1; x < width_; x++, xx--) {
      const uint8_t* p = rgbx + 4 * x;
      r[xx] = t0[p[0]];
      g[xx] = t1[p[1]];
      b[xx] = t2[p[2]];
    }
  }
}

}  // namespace resnet::image
