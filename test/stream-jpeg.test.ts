// The streaming data sets' JPEG fast path (native/core/jpeg_decode.cpp through the addon's
// decodeJpeg): libjpeg-turbo's decode, crop, Pillow's resize, flip and normalisation in one call.
// Pixel parity, exact: with torchvision's own Resize + CenterCrop tensors (test/fixtures/
// generate_images.py: JPEGs 4:2:0, grayscale, EXIF-rotated, 1600x1200, the three filters), and with
// the TypeScript path that is Pillow's to the byte (sharp's decode, which equals Pillow's, then
// lib/image/resample.ts) on RandomResizedCrop boxes that shrink and grow, every EXIF orientation,
// 4:4:4 / 4:2:2 / progressive encodings. Then through StreamingDataset: the same boxes as the sharp
// path, close to its pixels, and a corrupt or truncated JPEG reported by name.
// Gated on the build: an addon without libjpeg-turbo answers jpegDecoderCompiled() false.
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DataError } from '../lib/data/errors.ts';
import { centerCropGeometry, decodeRgb } from '../lib/image/preprocess.ts';
import { resolve } from '../lib/image/preprocess-options.ts';
import { resampleWindow, type ResampleFilter } from '../lib/image/resample.ts';
import { native } from '../lib/native.ts';
import { StreamingDataset, T } from '../lib/stream/index.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

const compiled = native.jpegDecoderCompiled();
const gated = compiled ? test : test.skip;

test('jpegDecoderCompiled() says whether the addon has the JPEG decoder', (t) => {
  t.is(typeof compiled, 'boolean');
  if (!compiled) t.log('built without libjpeg-turbo: the JPEG fast path tests are skipped, streaming uses sharp');
});

function packed(mean: readonly number[], std: readonly number[]): { tables: Float32Array; split: [Float32Array, Float32Array, Float32Array] } {
  const split = resolve({ mean: mean as never, std: std as never }).tables;
  const tables = new Float32Array(768);
  split.forEach((table, c) => tables.set(table, c * 256));
  return { tables, split };
}

const imagenet = packed([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
const identity = packed([0, 0, 0], [1, 1, 1]);

function maxDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** The Pillow-exact TypeScript path: decode (sharp, upright), PIL's crop, PIL's resize, flip, normalise. */
async function reference(bytes: Uint8Array, box: [number, number, number, number], outH: number, outW: number, filter: ResampleFilter, flip: boolean, split: Float32Array[]): Promise<Float32Array> {
  const pixels = await decodeRgb(bytes, 1e9);
  const [top, left, h, w] = box;
  const region = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) region.set(pixels.data.subarray(((top + y) * pixels.width + left) * 3, ((top + y) * pixels.width + left + w) * 3), y * w * 3);
  const rgb = resampleWindow(region, w, h, outW, outH, filter, { x0: 0, x1: outW, y0: 0, y1: outH });
  const plane = outH * outW;
  const out = new Float32Array(3 * plane);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const i = (y * outW + (flip ? outW - 1 - x : x)) * 3;
      for (let c = 0; c < 3; c++) out[c * plane + y * outW + x] = split[c]![rgb[i + c]!]!;
    }
  }
  return out;
}

function decode(bytes: Uint8Array, box: [number, number, number, number], outH: number, outW: number, filter: ResampleFilter, flip: boolean, tables: Float32Array): Float32Array {
  const out = new Float32Array(3 * outH * outW);
  native.decodeJpeg(bytes, { box, resize: [outH, outW], window: [0, 0, outH, outW], filter, flip, tables }, out, 0);
  return out;
}

gated('Resize + CenterCrop: torchvision\'s tensor exactly, for every JPEG fixture it decodes', async (t) => {
  const dir = ensureGenerated('generate_images.py', 'images');
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    cases: Array<{ name: string; file: string; format: string; mode: string; resize: number; crop: number; interpolation: ResampleFilter; reference: string }>;
  };
  const jpegs = index.cases.filter((c) => c.format === 'jpeg');
  t.true(jpegs.length >= 8);
  for (const c of jpegs) {
    const bytes = await readFile(join(dir, c.file));
    const info = native.jpegInfo(bytes)!;
    if (c.mode === 'CMYK') {
      t.false(info.decodable, `${c.name}: CMYK is left to sharp`);
      continue;
    }
    t.true(info.decodable, c.name);
    const g = centerCropGeometry(info.width, info.height, c.resize, c.crop);
    const out = new Float32Array(3 * c.crop * c.crop);
    const transform = { box: [0, 0, info.height, info.width], resize: [g.resizedHeight, g.resizedWidth], window: [g.startY, g.startX, c.crop, c.crop], filter: c.interpolation, flip: false, tables: imagenet.tables };
    native.decodeJpeg(bytes, transform as Parameters<typeof native.decodeJpeg>[1], out, 0);
    const expected = await readFile(join(dir, c.reference));
    const reference = new Float32Array(expected.buffer.slice(expected.byteOffset, expected.byteOffset + expected.byteLength));
    t.is(maxDifference(out, reference), 0, `${c.name}: differs from torchvision`);
  }
});

/** A photo-like picture of width x height: gradients, edges and noise. */
function picture(width: number, height: number, seed: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const o = (y * width + x) * 3;
      px[o] = ((x * 3 + y) % 256) ^ (s >>> 28);
      px[o + 1] = x > width / 3 && y < height / 2 ? 220 : (y * 2 + seed) % 256;
      px[o + 2] = ((x + y) * 5 + seed) % 256 ^ (s >>> 29);
    }
  }
  return px;
}

const encode = (width: number, height: number, seed: number, options: sharp.JpegOptions = {}) =>
  sharp(picture(width, height, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90, ...options }).toBuffer();

gated('RandomResizedCrop boxes (shrinking and growing), three filters, flips: the Pillow-exact path to the byte', async (t) => {
  const bytes = await encode(83, 61, 1);
  const cases: Array<[[number, number, number, number], number, number]> = [
    [[0, 0, 61, 83], 32, 32], // whole image, shrink
    [[5, 7, 40, 30], 24, 24], // shrink
    [[10, 20, 12, 9], 32, 32], // grow both
    [[0, 40, 61, 20], 32, 16], // grow one axis, shrink the other
    [[3, 3, 24, 24], 24, 24], // same size: no resampling
    [[60, 82, 1, 1], 8, 8], // one pixel
    [[2, 1, 50, 77], 20, 30], // non-square output
  ];
  for (const filter of ['bilinear', 'bicubic', 'lanczos'] as const) {
    for (const [box, h, w] of cases) {
      for (const flip of [false, true]) {
        const label = `${filter} box ${box} -> ${h}x${w}${flip ? ' flipped' : ''}`;
        t.is(maxDifference(decode(bytes, box, h, w, filter, flip, imagenet.tables), await reference(bytes, box, h, w, filter, flip, imagenet.split)), 0, label);
      }
    }
  }
});

gated('every EXIF orientation: the box is taken from the upright image, as sharp\'s rotate() gives it', async (t) => {
  const plain = await encode(37, 23, 2);
  for (let orientation = 1; orientation <= 8; orientation++) {
    const bytes = await sharp(plain).withMetadata({ orientation }).jpeg({ quality: 90 }).toBuffer();
    const info = native.jpegInfo(bytes)!;
    t.is(info.orientation, orientation);
    t.deepEqual([info.width, info.height], orientation >= 5 ? [23, 37] : [37, 23], `orientation ${orientation}`);
    const box: [number, number, number, number] = [2, 3, info.height - 5, info.width - 7];
    for (const [h, w] of [[16, 16], [40, 30], [info.height - 5, info.width - 7]] as const) {
      const got = decode(bytes, box, h, w, 'bilinear', false, identity.tables);
      t.is(maxDifference(got, await reference(bytes, box, h, w, 'bilinear', false, identity.split)), 0, `orientation ${orientation} -> ${h}x${w}`);
    }
  }
});

gated('4:4:4, progressive and grayscale encodings decode as sharp (Pillow) decodes them', async (t) => {
  const variants: Array<[string, Promise<Buffer>]> = [
    ['4:4:4', encode(70, 45, 3, { chromaSubsampling: '4:4:4' })],
    ['progressive 4:2:0', encode(70, 45, 4, { progressive: true })],
    ['progressive 4:4:4', encode(45, 70, 5, { progressive: true, chromaSubsampling: '4:4:4' })],
    ['grayscale', sharp(picture(64, 40, 6), { raw: { width: 64, height: 40, channels: 3 } }).grayscale().jpeg({ quality: 85 }).toBuffer()],
  ];
  for (const [name, pending] of variants) {
    const bytes = await pending;
    const info = native.jpegInfo(bytes)!;
    const box: [number, number, number, number] = [0, 0, info.height, info.width];
    // Same size: the decoded pixels themselves, x / 255.
    t.is(maxDifference(decode(bytes, box, info.height, info.width, 'bilinear', false, identity.tables), await reference(bytes, box, info.height, info.width, 'bilinear', false, identity.split)), 0, name);
    const crop: [number, number, number, number] = [7, 9, 21, 30];
    t.is(maxDifference(decode(bytes, crop, 16, 16, 'bilinear', true, identity.tables), await reference(bytes, crop, 16, 16, 'bilinear', true, identity.split)), 0, `${name}, cropped`);
  }
});

gated('bad input: not a JPEG is null, a broken one throws with libjpeg\'s words, arguments are checked', async (t) => {
  const good = await encode(40, 30, 7);
  t.is(native.jpegInfo(new Uint8Array([0x89, 0x50, 0x4e, 0x47])), null);
  t.throws(() => native.jpegInfo(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(20, 7)])), { message: /JPEG|marker/i });
  const out = new Float32Array(3 * 8 * 8);
  const transform = (box: [number, number, number, number]) => ({ box, resize: [8, 8] as [number, number], window: [0, 0, 8, 8] as [number, number, number, number], filter: 'bilinear' as const, flip: false, tables: identity.tables });
  const truncated = t.throws(() => native.decodeJpeg(good.subarray(0, good.length >> 1), transform([0, 0, 30, 40]), out, 0));
  t.regex(truncated!.message, /Premature end of JPEG file/);
  t.is((truncated as Error & { code?: string }).code, 'ERR_RESNET_INVALID_ARGUMENT');
  t.throws(() => native.decodeJpeg(good, transform([0, 0, 31, 40]), out, 0), { message: /crop box inside the 40x30 image/ });
  t.throws(() => native.decodeJpeg(good, transform([0, 0, 30, 40]), out, 1), { message: /to fit in out \(192 floats\)/ });
  t.throws(() => native.decodeJpeg(good, { ...transform([0, 0, 30, 40]), tables: new Float32Array(3) }, out, 0), { message: /768 floats/ });
  t.throws(() => native.decodeJpeg(good, { ...transform([0, 0, 30, 40]), window: [1, 0, 8, 8] }, out, 0), { message: /window inside the 8x8 resized image/ });
  // Recoverable damage (extraneous bytes before a marker) decodes, as in Pillow.
  const sos = good.indexOf(Buffer.from([0xff, 0xda]));
  const damaged = Buffer.concat([good.subarray(0, sos), Buffer.from([0x00, 0x00]), good.subarray(sos)]);
  t.notThrows(() => native.decodeJpeg(damaged, transform([0, 0, 30, 40]), out, 0));
});

test('copyToPooled: an equal copy in an ordinary ArrayBuffer, from a SharedArrayBuffer view', (t) => {
  const shared = new Float32Array(new SharedArrayBuffer(4 * 1000));
  shared.forEach((_, i) => (shared[i] = i / 7));
  for (let k = 0; k < 3; k++) {
    const copy = native.copyToPooled(shared);
    t.true(copy.buffer instanceof ArrayBuffer);
    t.deepEqual(copy, new Float32Array(shared));
    shared[0] = -1 - k; // the copy is a copy
    t.not(copy[0], shared[0]);
  }
  t.is(native.copyToPooled(new Float32Array(0)).length, 0);
  t.throws(() => native.copyToPooled(new Uint8Array(4) as never), { message: /Float32Array/ });
});

let root: string;
test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'resnet-stream-jpeg-'));
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function epoch(data: StreamingDataset, seed: number): Promise<{ images: Float32Array; indices: number[] }> {
  const images: Float32Array[] = [];
  const indices: number[] = [];
  for await (const batch of data.batches({ batchSize: 3, shuffle: true, seed, epoch: 1 })) {
    images.push(batch.images.data as Float32Array);
    indices.push(...batch.indices);
  }
  const all = new Float32Array(images.reduce((n, x) => n + x.length, 0));
  images.reduce((at, x) => (all.set(x, at), at + x.length), 0);
  return { images: all, indices };
}

gated('StreamingDataset: the native path takes the same boxes and flips as the sharp path, and PNGs still decode', async (t) => {
  const dir = join(root, 'mixed');
  await mkdir(join(dir, 'a'), { recursive: true });
  await mkdir(join(dir, 'b'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(dir, 'a', `${i}.jpg`), await encode(60 + 9 * i, 50 + 5 * i, 10 + i));
  await writeFile(join(dir, 'b', 'rotated.jpg'), await sharp(await encode(70, 40, 20)).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer());
  await writeFile(join(dir, 'b', 'picture.png'), await sharp(picture(50, 40, 21), { raw: { width: 50, height: 40, channels: 3 } }).png().toBuffer());
  const transforms = () => [T.RandomResizedCrop(24), T.RandomHorizontalFlip(), T.Normalize([0, 0, 0], [1, 1, 1])];
  const fast = await StreamingDataset.fromFolder(dir, { transforms: transforms(), workers: 2 });
  const slow = await StreamingDataset.fromFolder(dir, { transforms: transforms(), workers: 2, decoder: 'sharp' });
  t.teardown(() => (fast.close(), slow.close()));
  const [a, b] = [await epoch(fast, 4), await epoch(slow, 4)];
  t.deepEqual(a.indices, b.indices);
  const plane = 3 * 24 * 24;
  for (let k = 0; k < a.indices.length; k++) {
    const x = a.images.subarray(k * plane, (k + 1) * plane);
    const y = b.images.subarray(k * plane, (k + 1) * plane);
    let sum = 0;
    for (let i = 0; i < plane; i++) sum += Math.abs(x[i]! - y[i]!);
    // Pillow's resampler against libvips' (the sharp path's reductions): close, in [0, 1] units.
    t.true(sum / plane < 0.004, `image ${a.indices[k]}: mean difference ${sum / plane}`);
  }
  // The PNG (index 5: b/picture.png) goes through sharp either way.
  const png = a.indices.indexOf(5);
  t.true(Buffer.from(a.images.buffer, png * plane * 4, plane * 4).equals(Buffer.from(b.images.buffer, png * plane * 4, plane * 4)));
  await t.throwsAsync(StreamingDataset.fromFolder(dir, { transforms: transforms(), decoder: 'fast' as never }), { message: /for decoder/ });
});

gated('StreamingDataset: a truncated or corrupt JPEG is a DataError naming the file, or skipped and counted', async (t) => {
  const dir = join(root, 'bad');
  await mkdir(join(dir, 'a'), { recursive: true });
  const good = await encode(50, 40, 30);
  for (let i = 0; i < 3; i++) await writeFile(join(dir, 'a', `${i}.jpg`), good);
  await writeFile(join(dir, 'a', 'truncated.jpg'), good.subarray(0, good.length - 200));
  const transforms = [T.RandomResizedCrop(16), T.Normalize([0, 0, 0], [1, 1, 1])];
  const strict = await StreamingDataset.fromFolder(dir, { transforms, workers: 1 });
  t.teardown(() => strict.close());
  const error = await t.throwsAsync(epoch(strict, 0), { instanceOf: DataError });
  t.regex(error.message, /^Cannot decode image '.*truncated\.jpg': Premature end of JPEG file/);
  t.is(error.file, join(dir, 'a', 'truncated.jpg'));

  await writeFile(join(dir, 'a', 'garbage.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00]), Buffer.alloc(100, 0x55)]));
  const lenient = await StreamingDataset.fromFolder(dir, { transforms: [T.Resize(20), T.CenterCrop(16), T.Normalize([0, 0, 0], [1, 1, 1])], workers: 1, onBadSample: 'skip' });
  t.teardown(() => lenient.close());
  const it = lenient.batches({ batchSize: 2 });
  let images = 0;
  for await (const batch of it) images += batch.images.shape[0]!;
  t.is(images, 3);
  const stats = it.stats();
  t.is(stats.skipped, 2);
  t.true(stats.skippedExamples.some((m) => /garbage\.jpg'/.test(m)), stats.skippedExamples.join('\n'));
});
