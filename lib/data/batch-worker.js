// The batch worker: builds ImageDataset batches off the main thread. Plain JavaScript on purpose:
// it runs unchanged from lib/ under tsx (which does not hook a worker's entry module on Node 20)
// and from the published package, with no loader and no build step.
//
// workerData: the dataset's pixels (N x C x H x W bytes) and labels in SharedArrayBuffers (shared,
// never copied), an optional index map (subsets), and the resolved options from batch-options.ts,
// which carry the epoch's order when `indices` or `shard` chose it.
// Each message is a batch number k; the reply carries three new ArrayBuffers (images float32,
// labels int64, dataset indices int32), transferred, so nothing is copied back either.
//
// Randomness: every draw comes from a generator seeded by (seed, epoch, stream): stream 0 is the
// epoch's order, stream k + 1 batch k's augmentation. Batches are therefore the same whatever the
// prefetch depth or the order they are asked in.
import { parentPort, workerData } from 'node:worker_threads';
import { epochOrder, randomErase } from './augment.js';
import { hashSeed, Random } from './random.js';

const { pixels, labels, positions, channels: C, height: H, width: W, length, options } = workerData;
const { batchSize, shuffle, seed, epoch, table, padding, hflip, erasing } = options;
const order = options.order ?? epochOrder(length, shuffle, seed, epoch);
const n = order.length;
const plane = H * W;
const imageSize = C * plane;


/** Writes image `src` into out[dst...], shifted by (dy, dx) (the crop window's offset from the
 * unpadded image) and optionally mirrored; pixels from outside the image are the zero padding. */
function copyImage(out, dst, src, dy, dx, flip) {
  for (let c = 0; c < C; c++) {
    const lut = c * 256;
    const pad = table[lut];
    for (let y = 0; y < H; y++) {
      const row = dst + c * plane + y * W;
      const sy = y + dy;
      if (sy < 0 || sy >= H) {
        out.fill(pad, row, row + W);
        continue;
      }
      const srcRow = src + c * plane + sy * W;
      for (let x = 0; x < W; x++) {
        const sx = (flip ? W - 1 - x : x) + dx;
        out[row + x] = sx >= 0 && sx < W ? table[lut + pixels[srcRow + sx]] : pad;
      }
    }
  }
}

function build(k) {
  const start = k * batchSize;
  const size = Math.min(batchSize, n - start);
  const images = new Float32Array(size * imageSize);
  const labelsOut = new BigInt64Array(size);
  const indices = new Int32Array(size);
  const random = new Random(hashSeed(seed, epoch, k + 1));
  for (let j = 0; j < size; j++) {
    const index = order[start + j];
    const base = positions === null ? index : positions[index];
    indices[j] = index;
    labelsOut[j] = BigInt(labels[base]);
    // RandomCrop draws the window's top then left in [0, 2 * padding]; unaugmented = centred.
    const top = padding === null ? 0 : random.int(2 * padding + 1) - padding;
    const left = padding === null ? 0 : random.int(2 * padding + 1) - padding;
    const flip = hflip && random.next() < 0.5;
    copyImage(images, j * imageSize, base * imageSize, top, left, flip);
    if (erasing !== null) randomErase(images, j * imageSize, C, H, W, erasing, random);
  }
  return { index: k, size, images: images.buffer, labels: labelsOut.buffer, indices: indices.buffer };
}

parentPort.on('message', (k) => {
  const started = performance.now();
  let reply;
  try {
    reply = build(k);
  } catch (error) {
    parentPort.postMessage({ index: k, error: String(error), stack: error instanceof Error ? error.stack : undefined });
    return;
  }
  reply.buildMs = performance.now() - started;
  parentPort.postMessage(reply, [reply.images, reply.labels, reply.indices]);
});
