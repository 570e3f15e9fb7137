// preprocess() options: their types, defaults and validation, and the normalisation tables.
// Apart from the decoding (preprocess.ts, which loads sharp) so that models and saved-model
// descriptions can check options without loading an image library.
import { invalid, knownKeys, oneOf, plainObject, positiveInteger } from '../validate.js';
import type { WeightsTransforms } from '../weights/registry.js';
import type { ResampleFilter } from './resample.js';

/** torchvision's InterpolationMode values that are supported (Pillow's filters of the same name). */
export type Interpolation = ResampleFilter;
export const interpolations: readonly Interpolation[] = Object.freeze(['bilinear', 'bicubic', 'lanczos'] as const);

/**
 * - 'sharp' (default): reductions in libvips on the thread pool; close to Pillow, not equal.
 * - 'pillow': every resize in Pillow's arithmetic, on the calling thread: torchvision's tensor
 *   exactly, at a cost that grows with the input's size (tens of milliseconds for a 12-megapixel
 *   photo).
 * Enlargements are computed as Pillow does with either.
 */
export type Resampler = 'sharp' | 'pillow';
export const resamplers: readonly Resampler[] = Object.freeze(['sharp', 'pillow'] as const);

export type RGB = readonly [number, number, number];

/**
 * - 'shorter-side' (default): torchvision's Resize(resize) + CenterCrop(crop), as above.
 * - 'cover' / 'fill': ImageFolder's decode (lib/image/fitted-decode.ts): sharp scales the image
 *   straight to crop x crop with Lanczos-3, cutting the centre out ('cover', ImageFolder's
 *   resize 'crop') or stretching ('fill', resize 'stretch'). A model trained on an ImageFolder
 *   saves this, so serving gives the bytes training saw. `resize`, `interpolation` and
 *   `resampler` do not apply.
 */
export type Fit = 'shorter-side' | 'cover' | 'fill';
export const fits: readonly Fit[] = Object.freeze(['shorter-side', 'cover', 'fill'] as const);

export interface PreprocessOptions {
  /** The shorter side is resized to this (torchvision's resize_size). Default 256. */
  resize?: number;
  /** Side of the centre crop (crop_size). Default 224. With fit 'cover' or 'fill' also [height, width]. */
  crop?: number | readonly [number, number];
  /** Default 'shorter-side'. */
  fit?: Fit;
  /** Per-channel mean subtracted after scaling to [0, 1]. Default ImageNet's (0.485, 0.456, 0.406). */
  mean?: RGB;
  /** Per-channel divisor. Default ImageNet's (0.229, 0.224, 0.225). */
  std?: RGB;
  /** Default 'bilinear', as every torchvision ResNet weights entry. */
  interpolation?: Interpolation;
  resampler?: Resampler;
  /**
   * Largest image accepted, in pixels (width x height, read from the header before decoding).
   * Default 89,478,485: Pillow's MAX_IMAGE_PIXELS, its decompression-bomb limit. A 32 KB PNG can
   * declare 16383 x 16383 pixels, 800 MB once decoded.
   */
  maxPixels?: number;
}

/** Pillow's Image.MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3. */
export const defaultMaxPixels = 89_478_485;

export const imagenetMean: RGB = Object.freeze([0.485, 0.456, 0.406] as const);
export const imagenetStd: RGB = Object.freeze([0.229, 0.224, 0.225] as const);

const optionNames = ['resize', 'crop', 'fit', 'mean', 'std', 'interpolation', 'resampler', 'maxPixels'] as const;

export interface Resolved {
  resize: number;
  /** Square side for 'shorter-side'; height and width are the output's in every mode. */
  crop: number;
  height: number;
  width: number;
  fit: Fit;
  interpolation: Interpolation;
  resampler: Resampler;
  maxPixels: number;
  /** Per channel: byte -> normalised value. */
  tables: [Float32Array, Float32Array, Float32Array];
}

function rgb(name: string, value: unknown, positive: boolean): RGB {
  const ok =
    Array.isArray(value) &&
    value.length === 3 &&
    value.every((v) => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0));
  if (!ok) throw invalid(`an array of 3 ${positive ? 'positive ' : ''}finite numbers`, name, value);
  return value as unknown as RGB;
}

/** torchvision's arithmetic: uint8 -> float32 / 255, then (x - mean) / std in float32. */
function tables(mean: RGB, std: RGB): Resolved['tables'] {
  const make = (c: 0 | 1 | 2) => {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v / 255) - m) / s;
    return table;
  };
  return [make(0), make(1), make(2)];
}

function resolveCrop(value: unknown, fit: Fit): [number, number] {
  if (value === undefined) return [224, 224];
  if (Array.isArray(value) && fit !== 'shorter-side') {
    if (value.length !== 2) throw invalid('a positive integer or [height, width]', 'crop', value);
    return [positiveInteger('crop[0]', value[0]), positiveInteger('crop[1]', value[1])];
  }
  if (Array.isArray(value)) throw invalid("a positive integer (a [height, width] crop needs fit 'cover' or 'fill')", 'crop', value);
  const side = positiveInteger('crop', value);
  return [side, side];
}

export function resolve(options: unknown, extra: readonly string[] = []): Resolved {
  const o = options === undefined ? {} : plainObject('preprocess options', options);
  knownKeys('preprocess options', o, [...optionNames, ...extra]);
  const fit = o.fit === undefined ? 'shorter-side' : oneOf('fit', o.fit, fits);
  const [height, width] = resolveCrop(o.crop, fit);
  return {
    resize: o.resize === undefined ? 256 : positiveInteger('resize', o.resize),
    crop: height,
    height,
    width,
    fit,
    interpolation: o.interpolation === undefined ? 'bilinear' : oneOf('interpolation', o.interpolation, interpolations),
    resampler: o.resampler === undefined ? 'sharp' : oneOf('resampler', o.resampler, resamplers),
    maxPixels: o.maxPixels === undefined ? defaultMaxPixels : positiveInteger('maxPixels', o.maxPixels),
    tables: tables(
      o.mean === undefined ? imagenetMean : rgb('mean', o.mean, false),
      o.std === undefined ? imagenetStd : rgb('std', o.std, true),
    ),
  };
}

/** Checks preprocess options (an InvalidArgumentError if wrong) and returns a copy of them. */
export function checkPreprocessOptions(options: unknown): PreprocessOptions {
  resolve(options);
  return structuredClone(options) as PreprocessOptions;
}

/** fromTransforms' result: every option set, tuples that the caller may keep and change. */
export interface TransformsOptions extends PreprocessOptions {
  resize: number;
  crop: number;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: Interpolation;
}

/** The options that reproduce a weights entry's transforms (e.g. resnet50 IMAGENET1K_V2: resize 232). */
export function fromTransforms(transforms: WeightsTransforms): TransformsOptions {
  const t = plainObject('transforms', transforms);
  return {
    resize: positiveInteger('transforms.resizeSize', t.resizeSize),
    crop: positiveInteger('transforms.cropSize', t.cropSize),
    mean: [...rgb('transforms.mean', t.mean, false)] as [number, number, number],
    std: [...rgb('transforms.std', t.std, true)] as [number, number, number],
    interpolation: oneOf('transforms.interpolation', t.interpolation, interpolations),
  };
}

