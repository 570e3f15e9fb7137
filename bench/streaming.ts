// The streaming pipeline against PyTorch's DataLoader, on the same 2 cores, on a folder of JPEGs of
// ImageNet-like size (500x375, made here): RandomResizedCrop(224) + flip + normalise, batch 64;
// ours with the addon's JPEG path (the default when built with libjpeg-turbo) and with sharp.
// Then per-core rates (decode only: sharp vs PIL; the addon's decode and its whole per-image
// pipeline), and memory: RSS over 3 epochs of the 5,000-image set, and for a 4x bigger set.
//   node --import=tsx bench/streaming.ts [--images 5000] [--big 20000] [--batches 40] [--dir DIR]
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { hashSeed, Random } from '../lib/data/random.js';
import { resolve } from '../lib/image/preprocess-options.ts';
import { native } from '../lib/native.ts';
import { StreamingDataset, T } from '../lib/stream/index.ts';
import { randomResizedCropBox } from '../lib/stream/transforms.ts';
import { python, runPython, waitForQuiet } from './util.ts';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '5000' },
    big: { type: 'string', default: '20000' },
    batches: { type: 'string', default: '40' },
    dir: { type: 'string', default: join(tmpdir(), 'resnet-stream-bench') },
  },
});
const classes = 10;
const batchSize = 64;

/** A photo-like 500x375 JPEG (smooth gradients and noise, so it compresses like one: ~40-60 KB). */
async function jpeg(seed: number): Promise<Buffer> {
  const width = 500;
  const height = 375;
  const px = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const o = (y * width + x) * 3;
      px[o] = (x * (seed % 7 + 1) + y) % 256 ^ (s >>> 28);
      px[o + 1] = (y * 2 + seed * 13) % 256 ^ (s >>> 29);
      px[o + 2] = ((x + y) * 3 + seed) % 256;
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).blur(0.8).jpeg({ quality: 88 }).toBuffer();
}

/** root/<class>/<n>.jpg, made once (kept between runs). */
async function folder(count: number): Promise<string> {
  const root = join(values.dir!, String(count));
  const have = await readdir(root).then((c) => c.length, () => 0);
  if (have === classes) return root;
  console.error(`making ${count} JPEGs in ${root} ...`);
  for (let c = 0; c < classes; c++) await mkdir(join(root, `class${c}`), { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(join(root, `class${i % classes}`, `${i}.jpg`), await jpeg(i));
  return root;
}

const transforms = () => [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])];
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;

async function ours(root: string, batches: number, decoder: 'auto' | 'sharp'): Promise<{ imagesPerSecond: number; images: number; seconds: number }> {
  const data = await StreamingDataset.fromFolder(root, { transforms: transforms(), decoder });
  const it = data.batches({ batchSize, shuffle: true, seed: 0, epoch: 0, dropLast: true });
  await it.next(); // workers started, first batch out
  const start = performance.now();
  let images = 0;
  for (let k = 0; k < batches; k++) {
    const r = await it.next();
    if (r.done) break;
    images += r.value.images.shape[0]!;
  }
  const seconds = (performance.now() - start) / 1000;
  await it.return?.();
  await data.close();
  return { imagesPerSecond: images / seconds, images, seconds };
}

/** sharp's decode of the JPEGs to raw RGB, one at a time on one thread. */
async function sharpDecodeOneCore(root: string, count: number): Promise<number> {
  sharp.concurrency(1);
  const files = (await readdir(join(root, 'class0'))).slice(0, count).map((f) => join(root, 'class0', f));
  const t0 = performance.now();
  for (const f of files) await sharp(f).raw().toBuffer();
  sharp.concurrency(0);
  return files.length / ((performance.now() - t0) / 1000);
}

/**
 * The addon's JPEG path on this thread, one image at a time (file read included, as sharp's and
 * PIL's decode rates include theirs): decode only (the whole image to floats, no resize), and the
 * streaming worker's whole per-image work (header, RandomResizedCrop box, decode, crop, resize,
 * flip, normalise).
 */
function nativeOneCore(root: string, count: number): { decodePerSecond: number; pipelinePerSecond: number } | null {
  if (!native.jpegDecoderCompiled()) return null;
  const files = readdirSync(join(root, 'class0')).slice(0, count).map((f) => join(root, 'class0', f));
  const split = resolve({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }).tables;
  const tables = new Float32Array(768);
  split.forEach((t, c) => tables.set(t, c * 256));
  let out = new Float32Array(3 * 224 * 224);
  let t0 = performance.now();
  for (const f of files) {
    const bytes = readFileSync(f);
    const info = native.jpegInfo(bytes)!;
    if (out.length < 3 * info.width * info.height) out = new Float32Array(3 * info.width * info.height);
    const whole: [number, number, number, number] = [0, 0, info.height, info.width];
    native.decodeJpeg(bytes, { box: whole, resize: [info.height, info.width], window: whole, filter: 'bilinear', flip: false, tables }, out, 0);
  }
  const decodePerSecond = files.length / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (const [k, f] of files.entries()) {
    const bytes = readFileSync(f);
    const info = native.jpegInfo(bytes)!;
    const random = new Random(hashSeed(0, 0, k + 1));
    const box = randomResizedCropBox(info.width, info.height, [0.08, 1], [3 / 4, 4 / 3], { uniform: (a, b) => random.uniform(a, b), randint: (a, b) => a + random.int(b - a) });
    native.decodeJpeg(bytes, { box, resize: [224, 224], window: [0, 0, 224, 224], filter: 'bilinear', flip: random.next() < 0.5, tables }, out, 0);
  }
  return { decodePerSecond, pipelinePerSecond: files.length / ((performance.now() - t0) / 1000) };
}

/** Peak and per-epoch RSS of the main process over `epochs` epochs (workers share its address space). */
async function memory(root: string, epochs: number, decoder: 'auto' | 'sharp' = 'auto'): Promise<{ perEpochMiB: number[]; peakMiB: number }> {
  const data = await StreamingDataset.fromFolder(root, { transforms: transforms(), decoder });
  let peak = rssMiB();
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB())), 100);
  const perEpoch: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    for await (const batch of data.batches({ batchSize, shuffle: true, seed: 0, epoch, dropLast: true })) void batch;
    perEpoch.push(Math.round(rssMiB()));
  }
  clearInterval(timer);
  await data.close();
  return { perEpochMiB: perEpoch, peakMiB: Math.round(peak) };
}

const small = await folder(Number(values.images));
const batches = Number(values.batches);
console.error('waiting for a quiet machine ...');
await waitForQuiet();
const mine = await ours(small, batches, 'auto');
await waitForQuiet();
const mineSharp = await ours(small, batches, 'sharp');
await waitForQuiet();
const theirs = runPython<{ imagesPerSecond: number; decodePerSecondOneCore: number; torch: string }>(
  'bench/torch_dataloader.py', ['--root', small, '--batches', String(batches), '--batch-size', String(batchSize), '--workers', '2'],
);
const sharpDecode = await sharpDecodeOneCore(small, 300);
const nativeRates = nativeOneCore(small, 300);
const mem = await memory(small, 3);
const memSharp = await memory(small, 3, 'sharp');
const bigRoot = await folder(Number(values.big));
const bigMem = await memory(bigRoot, 1);
const result = {
  date: new Date().toISOString(),
  python,
  images: Number(values.images),
  batches,
  jpegDecoderCompiled: native.jpegDecoderCompiled(),
  ours: mine,
  oursSharp: mineSharp,
  pytorch: theirs,
  ratio: mine.imagesPerSecond / theirs.imagesPerSecond,
  ratioSharp: mineSharp.imagesPerSecond / theirs.imagesPerSecond,
  decodeOneCore: { sharp: sharpDecode, pil: theirs.decodePerSecondOneCore, native: nativeRates?.decodePerSecond ?? null },
  nativePipelineOneCore: nativeRates?.pipelinePerSecond ?? null,
  // The process has the addon loaded (as a training process has), with its malloc settings.
  memory: { small: mem, smallSharp: memSharp, big: { images: Number(values.big), ...bigMem } },
};
console.log(JSON.stringify(result, null, 2));
