// A streaming worker: reads (or receives) one encoded image per task, decodes it, runs the
// pipeline (lib/stream/transforms.ts) and writes the normalised C x H x W floats into the batch's
// shared memory. Randomness comes from (seed, epoch, sample index): a sample gets the same crop
// whichever worker takes it and whenever.
//
// Two decoders. A JPEG (8-bit grayscale, YCbCr or RGB) goes through the addon when it was built
// with libjpeg-turbo: decode, crop, Pillow's resize, flip and normalisation in one synchronous
// call on this thread (native/core/jpeg_decode.cpp), about 3x cheaper than a sharp pipeline and
// Pillow's bytes exactly. Everything else (PNG, WebP, CMYK JPEGs, a CenterCrop that pads) goes
// through sharp as before. Both draw the same random numbers in the same order, so the boxes and
// flips do not depend on the decoder.
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import type { NativeBinding } from '../../types/native.js';
import { randomErase } from '../data/augment.js';
import { hashSeed, Random } from '../data/random.js';
import sharp from 'sharp';
import { centerCropGeometry, checkPixels, decodeRgb, resizeCropNormalize, resizeRgb, sharpKernel, type Pixels } from '../image/preprocess.js';
import { resolve } from '../image/preprocess-options.js';
import { randomResizedCropBox, type Draws, type Pipeline } from './transforms.js';

/** 'auto': JPEGs through the addon's libjpeg-turbo path when it has one; 'sharp': every image through sharp. */
export type StreamDecoder = 'auto' | 'sharp';

export interface StreamWorkerData {
  pipeline: Pipeline;
  maxPixels: number;
  decoder: StreamDecoder;
}

export interface StreamTask {
  id: number;
  /** A file to read, or the encoded bytes (from a tar shard). */
  file?: string;
  bytes?: Uint8Array;
  index: number;
  seed: number;
  epoch: number;
  /** The batch's images, and where this one goes (in floats). */
  out: SharedArrayBuffer;
  offset: number;
}

export type StreamReply = { id: number; ms: number } | { id: number; error: string };

const { pipeline, maxPixels, decoder } = workerData as StreamWorkerData;
const [outHeight, outWidth] = pipeline.size;
const plane = outHeight * outWidth;
const { mean, std } = pipeline.normalize;
const tables = resolve({ mean, std }).tables;
/** The three tables end to end, as the addon takes them. */
const packedTables = new Float32Array(3 * 256);
tables.forEach((table, c) => packedTables.set(table, c * 256));
const evalOptions = pipeline.crop ? null : resolve({ crop: outHeight, mean, std, interpolation: pipeline.resize?.interpolation ?? 'bilinear' });
const erasing = pipeline.erasing && {
  p: pipeline.erasing.p,
  scale: pipeline.erasing.scale,
  logRatio: [Math.log(pipeline.erasing.ratio[0]), Math.log(pipeline.erasing.ratio[1])] as const,
  value: pipeline.erasing.value,
};

/**
 * The addon, loaded in this worker (it keeps its state per thread), when it has the JPEG decoder;
 * null when declined, built without libjpeg-turbo, or not built at all: sharp then decodes all.
 */
async function loadJpegDecoder(): Promise<NativeBinding | null> {
  if (decoder === 'sharp') return null;
  try {
    const { native } = await import('../native.js');
    return native.jpegDecoderCompiled() ? native : null;
  } catch {
    return null;
  }
}
const jpeg = await loadJpegDecoder();

/** get_params' draws from this sample's generator. */
function drawsOf(random: Random): Draws {
  return { uniform: (low, high) => random.uniform(low, high), randint: (low, high) => low + random.int(high - low) };
}

/**
 * The whole pipeline but erasing for a JPEG the addon decodes, into out[0 ...]; false (nothing
 * drawn, nothing written) when it is not one: then the sharp path takes the image.
 */
function nativePipeline(bytes: Uint8Array, random: Random, out: Float32Array): boolean {
  const header = jpeg!.jpegInfo(bytes);
  if (!header?.decodable) return false;
  checkPixels(header.width, header.height, maxPixels);
  if (pipeline.crop) {
    const { scale, ratio, interpolation } = pipeline.crop;
    const box = randomResizedCropBox(header.width, header.height, scale, ratio, drawsOf(random));
    const flip = pipeline.flip !== undefined && random.next() < pipeline.flip;
    jpeg!.decodeJpeg(bytes, { box, resize: [outHeight, outWidth], window: [0, 0, outHeight, outWidth], filter: interpolation, flip, tables: packedTables }, out, 0);
    return true;
  }
  // Resize (the shorter side; without it the image keeps its size) + CenterCrop, when the crop
  // lies inside the resized image (one that pads takes the general path).
  const g = centerCropGeometry(header.width, header.height, pipeline.resize?.size ?? Math.min(header.width, header.height), outHeight);
  if (g.startX < 0 || g.startY < 0 || g.startX + outWidth > g.resizedWidth || g.startY + outHeight > g.resizedHeight) return false;
  const flip = pipeline.flip !== undefined && random.next() < pipeline.flip;
  jpeg!.decodeJpeg(
    bytes,
    {
      box: [0, 0, header.height, header.width],
      resize: [g.resizedHeight, g.resizedWidth],
      window: [g.startY, g.startX, outHeight, outWidth],
      filter: pipeline.resize?.interpolation ?? 'bilinear',
      flip,
      tables: packedTables,
    },
    out,
    0,
  );
  return true;
}

/** Rows top .. top+h, columns left .. left+w of interleaved RGB: PIL's Image.crop. */
function crop(pixels: Pixels, top: number, left: number, h: number, w: number): Pixels {
  const data = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) data.set(pixels.data.subarray(((top + y) * pixels.width + left) * 3, ((top + y) * pixels.width + left + w) * 3), y * w * 3);
  return { data, width: w, height: h };
}

/**
 * RandomResizedCrop's pixels. An 8-bit RGB or grey image is cropped and (when both sides shrink)
 * resized by sharp in one pipeline from the encoded bytes: one decode and no full-size copy, which
 * is most of the cost. Other images (CMYK, 16-bit, ...) are decoded as preprocess() decodes them.
 */
async function randomResizedCrop(bytes: Uint8Array, random: Random): Promise<Uint8Array> {
  const { scale, ratio, interpolation } = pipeline.crop!;
  const draws = drawsOf(random);
  const header = await sharp(bytes, { failOn: 'error', limitInputPixels: false }).metadata();
  checkPixels(header.width, header.height, maxPixels);
  if ((header.space === 'srgb' || header.space === 'b-w') && header.depth === 'uchar' && header.width && header.height) {
    const upright = (header.orientation ?? 1) >= 5;
    const [width, height] = upright ? [header.height, header.width] : [header.width, header.height];
    const [top, left, h, w] = randomResizedCropBox(width, height, scale, ratio, draws);
    const image = sharp(bytes, { failOn: 'error', ignoreIcc: true, limitInputPixels: maxPixels }).rotate().extract({ left, top, width: w, height: h });
    if (w >= outWidth && h >= outHeight) {
      return image.resize(outWidth, outHeight, { fit: 'fill', kernel: sharpKernel[interpolation] }).removeAlpha().toColourspace('srgb').raw().toBuffer();
    }
    // An enlargement: Pillow's arithmetic on the crop (libvips' would shift it).
    const region = await image.removeAlpha().toColourspace('srgb').raw().toBuffer();
    return resizeRgb({ data: region, width: w, height: h }, outWidth, outHeight, interpolation);
  }
  const pixels = await decodeRgb(bytes, maxPixels);
  const [top, left, h, w] = randomResizedCropBox(pixels.width, pixels.height, scale, ratio, draws);
  return resizeRgb(crop(pixels, top, left, h, w), outWidth, outHeight, interpolation);
}

/** The pipeline but erasing through sharp (and Pillow's arithmetic for enlargements), into out[0 ...]. */
async function sharpPipeline(bytes: Uint8Array, random: Random, out: Float32Array): Promise<void> {
  if (pipeline.crop) {
    const rgb = await randomResizedCrop(bytes, random);
    const flip = pipeline.flip !== undefined && random.next() < pipeline.flip;
    const [t0, t1, t2] = tables;
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) {
        const i = (y * outWidth + (flip ? outWidth - 1 - x : x)) * 3;
        const p = y * outWidth + x;
        out[p] = t0[rgb[i]!]!;
        out[plane + p] = t1[rgb[i + 1]!]!;
        out[2 * plane + p] = t2[rgb[i + 2]!]!;
      }
    }
  } else {
    // Resize (the shorter side; without it the image keeps its size) + CenterCrop + Normalize.
    const pixels = await decodeRgb(bytes, maxPixels);
    await resizeCropNormalize(pixels, { ...evalOptions!, resize: pipeline.resize?.size ?? Math.min(pixels.width, pixels.height) }, out, 0);
    if (pipeline.flip !== undefined && random.next() < pipeline.flip) {
      for (let c = 0; c < 3; c++) for (let y = 0; y < outHeight; y++) out.subarray(c * plane + y * outWidth, c * plane + (y + 1) * outWidth).reverse();
    }
  }
}

async function run(task: StreamTask): Promise<void> {
  const bytes = task.bytes ?? (await readFile(task.file!));
  const random = new Random(hashSeed(task.seed, task.epoch, task.index + 1));
  const out = new Float32Array(task.out, task.offset * 4, 3 * plane);
  if (!(jpeg && nativePipeline(bytes, random, out))) await sharpPipeline(bytes, random, out);
  if (erasing) randomErase(out, 0, 3, outHeight, outWidth, erasing, random);
}

parentPort!.on('message', (task: StreamTask) => {
  const started = performance.now();
  run(task).then(
    () => parentPort!.postMessage({ id: task.id, ms: performance.now() - started } satisfies StreamReply),
    (error: unknown) => parentPort!.postMessage({ id: task.id, error: (error instanceof Error ? error.message : String(error)).trim() } satisfies StreamReply),
  );
});
