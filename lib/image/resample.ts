// Pillow's convolution resampler (Image.resize with BILINEAR, BICUBIC or LANCZOS on 8-bit RGB),
// which is what torchvision's Resize runs on PIL images, restricted to a window of the output.
//
// The arithmetic is Pillow's, so the result is Pillow's to the bit:
// - a separable filter, stretched by the scale when reducing (that is the antialiasing), centred
//   at (x + 0.5) * scale in input pixels, cut at the image edges and renormalised there;
// - weights normalised to sum 1, then turned into fixed point with 22 fractional bits, rounded
//   half away from zero;
// - the horizontal pass first, its result rounded and clipped to 8 bits, then the vertical pass;
//   an axis whose size does not change is not filtered.
// Only the output pixels inside the window are computed, so the cost is that of the window (the
// centre crop), not of the whole resized image.

export type ResampleFilter = 'bilinear' | 'bicubic' | 'lanczos';

interface Kernel {
  support: number;
  weight(x: number): number;
}

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

const kernels: Record<ResampleFilter, Kernel> = {
  // Triangle.
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  // Keys' cubic with a = -0.5 (Catmull-Rom), as Pillow's BICUBIC.
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  // Lanczos with three lobes; Pillow's window is [-3, 3).
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

/** Fixed-point taps for the outputs [first, end) of an axis resized from inSize to outSize. */
interface Taps {
  /** First input index of each output. */
  start: Int32Array;
  /** Number of taps of each output. */
  count: Int32Array;
  /** `stride` weights per output (unused ones are 0). */
  weights: Int32Array;
  stride: number;
}

function taps(inSize: number, outSize: number, kernel: Kernel, first: number, end: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = kernel.support * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const n = end - first;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * stride);
  const inverse = 1 / filterScale;
  const w = new Float64Array(stride);
  for (let i = 0; i < n; i++) {
    const center = (first + i + 0.5) * scale;
    // Truncation, as C's (int) cast, then clamped to the image.
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const v = kernel.weight((x - center + 0.5) * inverse);
      w[x - lo] = v;
      sum += v;
    }
    start[i] = lo;
    count[i] = hi - lo;
    for (let k = 0; k < hi - lo; k++) {
      const v = sum !== 0 ? w[k]! / sum : w[k]!;
      weights[i * stride + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
  }
  return { start, count, weights, stride };
}

/** Pillow's clip8: the fixed-point sum back to a byte. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

export interface Window {
  /** Output columns [x0, x1) and rows [y0, y1) of the resized image. */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/**
 * The pixels of `win` in `src` (interleaved RGB, width x height) resized to outWidth x outHeight,
 * as Pillow computes them. Returns (x1 - x0) x (y1 - y0) interleaved RGB bytes.
 */
export function resampleWindow(
  src: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter,
  win: Window,
): Uint8Array {
  const kernel = kernels[filter];
  const { x0, x1, y0, y1 } = win;
  const winWidth = x1 - x0;
  const winHeight = y1 - y0;

  // Rows of the source that the vertical pass reads.
  let vertical: Taps | undefined;
  let rowFirst = y0;
  let rowEnd = y1;
  if (outHeight !== height) {
    vertical = taps(height, outHeight, kernel, y0, y1);
    rowFirst = vertical.start[0]!;
    rowEnd = vertical.start[winHeight - 1]! + vertical.count[winHeight - 1]!;
  }

  // Horizontal pass over those rows, window columns only: rows [rowFirst, rowEnd) x winWidth.
  const rows = rowEnd - rowFirst;
  const mid = new Uint8Array(rows * winWidth * 3);
  if (outWidth !== width) {
    const h = taps(width, outWidth, kernel, x0, x1);
    for (let r = 0; r < rows; r++) {
      const srcRow = (rowFirst + r) * width * 3;
      const midRow = r * winWidth * 3;
      for (let i = 0; i < winWidth; i++) {
        const first = h.start[i]!;
        const n = h.count[i]!;
        const k = i * h.stride;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let t = 0, p = srcRow + first * 3; t < n; t++, p += 3) {
          const wt = h.weights[k + t]!;
          s0 += src[p]! * wt;
          s1 += src[p + 1]! * wt;
          s2 += src[p + 2]! * wt;
        }
        const o = midRow + i * 3;
        mid[o] = clip8(s0);
        mid[o + 1] = clip8(s1);
        mid[o + 2] = clip8(s2);
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const from = ((rowFirst + r) * width + x0) * 3;
      mid.set(src.subarray(from, from + winWidth * 3), r * winWidth * 3);
    }
  }
  if (!vertical) return mid;

  // Vertical pass.
  const out = new Uint8Array(winHeight * winWidth * 3);
  const rowBytes = winWidth * 3;
  for (let j = 0; j < winHeight; j++) {
    const first = vertical.start[j]! - rowFirst;
    const n = vertical.count[j]!;
    const k = j * vertical.stride;
    const outRow = j * rowBytes;
    for (let c = 0; c < rowBytes; c++) {
      let s = HALF;
      for (let t = 0, p = first * rowBytes + c; t < n; t++, p += rowBytes) s += mid[p]! * vertical.weights[k + t]!;
      out[outRow + c] = clip8(s);
    }
  }
  return out;
}
