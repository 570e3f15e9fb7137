// Image files to the input tensor of a pretrained model, as torchvision's ImageClassification
// transform (torchvision/transforms/_presets.py) makes it from torchvision's default loader:
//
//   img = Image.open(path).convert('RGB')            decode to 8-bit RGB
//   img = F.resize(img, [resize], BILINEAR)           shorter side to `resize` (Pillow, antialiased)
//   img = F.center_crop(img, [crop])                  centre crop (zero padding if too small)
//   x = F.convert_image_dtype(F.pil_to_tensor(img), torch.float)       / 255
//   x = F.normalize(x, mean, std)                     (x - mean) / std, per channel
//
// Decoding (sharp, on libuv's thread pool) gives the bytes of Pillow's convert('RGB'): alpha is
// dropped without compositing, grayscale is replicated, CMYK uses Pillow's formula (not an ICC
// transform), embedded ICC profiles are ignored (Pillow ignores them too), 16-bit samples keep
// their high byte (Pillow does so for 16-bit RGB; for 16-bit grayscale it clips to 255 instead,
// which turns most of the image white: we do not copy that). Two deliberate differences from
// torchvision's loader: the EXIF orientation is applied, and a GIF's transparent pixels come out
// black (libvips' GIF loader clears them; Pillow shows the palette colour behind).
//
// Resizing: reductions run in sharp (libvips' reduce, with the kernel of the interpolation; it is
// antialiased like Pillow's and about a quarter of a grey level away on average, see
// test/image-preprocess.test.ts); enlargements, and every resize with resampler 'pillow', run
// Pillow's own fixed-point algorithm here (lib/image/resample.ts) on the crop window only, which
// gives Pillow's bytes exactly. (libvips enlarges on a corner-aligned grid: up to half a pixel of
// shift, 5 grey levels on average.) Reductions go through an 8-bit RGB copy of the whole image,
// never through JPEG shrink-on-load, which would not be Pillow's result.
//
// The float conversion is torchvision's float32 arithmetic, step by step, through a table per
// channel: for a given 8-bit crop the tensor is torchvision's to the bit.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { decodeFitted, type Fit as FittedMode } from './fitted-decode.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { describe, invalid, positiveInteger } from '../validate.js';
import { resolve, type Interpolation, type PreprocessOptions, type Resolved } from './preprocess-options.js';
import { ImageError } from './errors.js';
import { resampleWindow, type Window } from './resample.js';

/** A file path, or the bytes of an encoded image (a Buffer is a Uint8Array). */
export type ImageInput = string | Uint8Array;

export {
  checkPreprocessOptions,
  defaultMaxPixels,
  fits,
  fromTransforms,
  imagenetMean,
  imagenetStd,
  interpolations,
  resamplers,
  type Fit,
  type Interpolation,
  type PreprocessOptions,
  type Resampler,
  type RGB,
  type TransformsOptions,
} from './preprocess-options.js';

export interface PreprocessBatchOptions extends PreprocessOptions {
  /** Images decoded at the same time (each holds its full-size pixels while it is). Default:
   * the number of CPUs, at most 4 (libuv's default thread-pool size). */
  concurrency?: number;
}

// sharp's runtime has 'linear' (libvips' triangle kernel); its 0.33 typings leave it out.
export const sharpKernel: Record<Interpolation, keyof sharp.KernelEnum> = {
  bilinear: 'linear' as keyof sharp.KernelEnum,
  bicubic: 'cubic', // Catmull-Rom, as Pillow's BICUBIC (a = -0.5)
  lanczos: 'lanczos3',
};

function checkInput(name: string, input: unknown): ImageInput {
  if ((typeof input === 'string' && input.length > 0) || input instanceof Uint8Array) return input;
  throw invalid('a file path or a Uint8Array', name, input);
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim();
}

export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Decodes to 8-bit RGB, interleaved, upright, with the bytes Pillow's convert('RGB') gives. */
export async function decodeRgb(input: ImageInput, maxPixels: number): Promise<Pixels> {
  return decode(input, maxPixels);
}

/**
 * Resizes interleaved RGB to outWidth x outHeight as Pillow's Image.resize (torchvision's resize of
 * a PIL image): in sharp when both sides shrink (close to Pillow), else in Pillow's own arithmetic.
 */
export async function resizeRgb(pixels: Pixels, outWidth: number, outHeight: number, interpolation: Interpolation): Promise<Uint8Array> {
  const { data, width, height } = pixels;
  if (outWidth === width && outHeight === height) return data;
  if (outWidth > width || outHeight > height) {
    return resampleWindow(data, width, height, outWidth, outHeight, interpolation, { x0: 0, x1: outWidth, y0: 0, y1: outHeight });
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).resize(outWidth, outHeight, { fit: 'fill', kernel: sharpKernel[interpolation] }).raw().toBuffer();
}

/** torchvision's Resize(resize) + CenterCrop(crop) + Normalize of decoded pixels, into out[offset ...]. */
export async function resizeCropNormalize(pixels: Pixels, options: Resolved, out: Float32Array, offset: number): Promise<void> {
  return transform(pixels, options, out, offset);
}

async function decode(input: ImageInput, maxPixels: number): Promise<Pixels> {
  const source = typeof input === 'string' || Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  // failOn 'error': files with recoverable damage (e.g. extraneous bytes in a JPEG) load, as in
  // Pillow; truncated files do not. ignoreIcc: Pillow does not colour-manage either.
  // limitInputPixels: libvips' own guard, behind the check of the header below.
  const open = () => sharp(source, { failOn: 'error', ignoreIcc: true, limitInputPixels: maxPixels });
  const header = await sharp(source, { failOn: 'error', limitInputPixels: false }).metadata();
  checkPixels(header.width, header.height, maxPixels);
  const space = header.space;
  const cmyk = space === 'cmyk';
  const pipeline = cmyk
    ? open().rotate().pipelineColourspace('cmyk').toColourspace('cmyk') // raw CMYK, converted below
    : open().rotate().removeAlpha().toColourspace('srgb');
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  if (!cmyk) {
    if (channels !== 3) throw new Error(`decoded to ${channels} channels instead of 3`);
    return { data, width, height };
  }
  if (channels < 4) throw new Error(`decoded CMYK to ${channels} channels`);
  // Pillow's CMYK -> RGB: r = (255 - k) - (255 - k) * c / 255, rounded, in integers.
  const out = new Uint8Array(width * height * 3);
  for (let p = 0, i = 0, o = 0; p < width * height; p++, i += channels, o += 3) {
    const nk = 255 - data[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = data[i + c]! * nk + 128;
      out[o + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return { data: out, width, height };
}

/** Refuses, from the header alone, an image over `maxPixels` (a decompression bomb). */
export function checkPixels(width: number | undefined, height: number | undefined, maxPixels: number): void {
  if (width !== undefined && height !== undefined && width * height > maxPixels) {
    throw new Error(`${width}x${height} = ${width * height} pixels is over the limit of ${maxPixels} pixels (maxPixels)`);
  }
}

/** torchvision's _compute_resized_output_size for a single size: [width, height]. */
function resizedSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.trunc((size * height) / width)];
  return [Math.trunc((size * width) / height), size];
}

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/** Where center_crop starts along an axis of length n: negative when it pads (torchvision pads
 * (crop - n) // 2 before and the rest after, then crops at 0). */
function cropStart(n: number, crop: number): number {
  return crop > n ? -Math.floor((crop - n) / 2) : roundHalfEven((n - crop) / 2);
}

/**
 * torchvision's Resize(resize) + CenterCrop(crop) of a width x height image: the resized size, and
 * where the crop starts in it (negative along an axis where the crop is larger and pads).
 */
export function centerCropGeometry(width: number, height: number, resize: number, crop: number): { resizedWidth: number; resizedHeight: number; startX: number; startY: number } {
  const [resizedWidth, resizedHeight] = resizedSize(width, height, resize);
  return { resizedWidth, resizedHeight, startX: cropStart(resizedWidth, crop), startY: cropStart(resizedHeight, crop) };
}

/** Resizes, crops and normalises one decoded image into out[offset ...] (3 x crop x crop). */
async function transform(pixels: Pixels, o: Resolved, out: Float32Array, offset: number): Promise<void> {
  const { width, height } = pixels;
  const { crop } = o;
  const { resizedWidth: outWidth, resizedHeight: outHeight, startX, startY } = centerCropGeometry(width, height, o.resize, crop);
  const win: Window = {
    x0: Math.max(0, startX),
    x1: Math.min(outWidth, startX + crop),
    y0: Math.max(0, startY),
    y1: Math.min(outHeight, startY + crop),
  };
  const winWidth = win.x1 - win.x0;
  const winHeight = win.y1 - win.y0;

  let bytes: Uint8Array;
  if (outWidth === width && outHeight === height) {
    // torchvision does not resample an image that already has the size.
    bytes = resampleWindow(pixels.data, width, height, width, height, o.interpolation, win);
  } else if (o.resampler === 'pillow' || outWidth > width || outHeight > height) {
    bytes = resampleWindow(pixels.data, width, height, outWidth, outHeight, o.interpolation, win);
  } else {
    bytes = await sharp(pixels.data, { raw: { width, height, channels: 3 } })
      .resize(outWidth, outHeight, { fit: 'fill', kernel: sharpKernel[o.interpolation] })
      .extract({ left: win.x0, top: win.y0, width: winWidth, height: winHeight })
      .raw()
      .toBuffer();
  }

  // HWC bytes -> normalised CHW floats; the padding is the value of a 0 byte.
  const plane = crop * crop;
  const [t0, t1, t2] = o.tables;
  if (winWidth !== crop || winHeight !== crop) {
    out.fill(t0[0]!, offset, offset + plane);
    out.fill(t1[0]!, offset + plane, offset + 2 * plane);
    out.fill(t2[0]!, offset + 2 * plane, offset + 3 * plane);
  }
  const left = win.x0 - startX;
  const top = win.y0 - startY;
  for (let y = 0; y < winHeight; y++) {
    let i = y * winWidth * 3;
    let p = offset + (top + y) * crop + left;
    for (let x = 0; x < winWidth; x++, i += 3, p++) {
      out[p] = t0[bytes[i]!]!;
      out[p + plane] = t1[bytes[i + 1]!]!;
      out[p + 2 * plane] = t2[bytes[i + 2]!]!;
    }
  }
}

/** ImageFolder's decode (fit 'cover' or 'fill') and its normalisation, into out[offset ...]. */
async function fitted(input: ImageInput, o: Resolved, out: Float32Array, offset: number): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = typeof input === 'string' ? await readFile(input) : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } catch (error) {
    throw new Error(`cannot read the file (${(error as NodeJS.ErrnoException).code ?? message(error)})`);
  }
  const header = await sharp(bytes, { failOn: 'error', limitInputPixels: false }).metadata();
  checkPixels(header.width, header.height, o.maxPixels);
  const data = await decodeFitted(bytes, o.height, o.width, o.fit as FittedMode, o.maxPixels);
  const plane = o.height * o.width;
  const [t0, t1, t2] = o.tables;
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[offset + p] = t0[data[i]!]!;
    out[offset + plane + p] = t1[data[i + 1]!]!;
    out[offset + 2 * plane + p] = t2[data[i + 2]!]!;
  }
}

async function preprocessInto(input: ImageInput, o: Resolved, out: Float32Array, offset: number, index?: number): Promise<void> {
  try {
    if (o.fit === 'shorter-side') await transform(await decode(input, o.maxPixels), o, out, offset);
    else await fitted(input, o, out, offset);
  } catch (error) {
    throw new ImageError(input, message(error), { cause: error, ...(index === undefined ? {} : { index }) });
  }
}

/**
 * One image to a float32 tensor [1, 3, crop, crop], as torchvision's ImageClassification transform
 * (resize the shorter side, centre crop, scale to [0, 1], normalise). Rejects with an ImageError
 * for an input that is not a readable image, an InvalidArgumentError for a wrong option.
 */
export async function preprocess(input: ImageInput, options?: PreprocessOptions): Promise<Tensor<Float32Array>> {
  const o = resolve(options);
  checkInput('input', input);
  const out = new Float32Array(3 * o.height * o.width);
  await preprocessInto(input, o, out, 0);
  return new Tensor(out, [1, 3, o.height, o.width]);
}

/**
 * Several images to one float32 tensor [N, 3, crop, crop], in the order given. Up to
 * `concurrency` images are decoded at once, on libuv's thread pool; the first failure rejects
 * the whole batch (its ImageError says which input) and no further image is started.
 */
export async function preprocessBatch(inputs: readonly ImageInput[], options?: PreprocessBatchOptions): Promise<Tensor<Float32Array>> {
  const o = resolve(options, ['concurrency']);
  const raw = options as PreprocessBatchOptions | undefined;
  const concurrency =
    raw?.concurrency === undefined ? Math.max(1, Math.min(4, availableParallelism())) : positiveInteger('concurrency', raw.concurrency);
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new InvalidArgumentError(`Expected a non-empty array of file paths or Uint8Arrays for inputs but received ${describe(inputs)}`);
  }
  inputs.forEach((input, i) => checkInput(`inputs[${i}]`, input));

  const size = 3 * o.height * o.width;
  const out = new Float32Array(inputs.length * size);
  let next = 0;
  let failed = false;
  const runner = async () => {
    while (next < inputs.length && !failed) {
      const i = next++;
      try {
        await preprocessInto(inputs[i]!, o, out, i * size, i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, runner));
  return new Tensor(out, [inputs.length, 3, o.height, o.width]);
}
