// Augmentation arithmetic shared by the in-memory batch worker and the streaming workers. Plain
// JavaScript, as random.js, so that batch-worker.js imports it without a loader.
import { hashSeed, Random } from './random.js';

/** Python's round(): halves go to the even neighbour (torchvision's get_params use it). */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** 0 .. n-1 in a Fisher-Yates order drawn from `random`. */
export function shuffledOrder(n, random) {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = random.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** An epoch's order of n samples: 0 .. n-1, or shuffled by (seed, epoch) (stream 0). The one rule
 * for the batch worker, ImageDataset's shard and the streaming sources (a folder's files, a
 * WebDataset's shards). */
export function epochOrder(n, shuffle, seed, epoch) {
  if (shuffle) return shuffledOrder(n, new Random(hashSeed(seed, epoch, 0)));
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/**
 * torchvision's RandomErasing (get_params and erase) on the normalised C x H x W image at
 * out[dst ...]: with probability p, ten tries of a random area and aspect ratio; `erasing` holds
 * p, scale, logRatio and value (a number, or 'random' for normal noise).
 */
export function randomErase(out, dst, C, H, W, erasing, random) {
  if (!(random.next() < erasing.p)) return;
  const plane = H * W;
  const area = H * W;
  for (let attempt = 0; attempt < 10; attempt++) {
    const eraseArea = area * random.uniform(erasing.scale[0], erasing.scale[1]);
    const aspect = Math.exp(random.uniform(erasing.logRatio[0], erasing.logRatio[1]));
    const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(h < H && w < W)) continue;
    const top = random.int(H - h + 1);
    const left = random.int(W - w + 1);
    for (let c = 0; c < C; c++) {
      for (let y = top; y < top + h; y++) {
        const row = dst + c * plane + y * W;
        if (erasing.value === 'random') for (let x = left; x < left + w; x++) out[row + x] = random.normal();
        else out.fill(erasing.value, row + left, row + left + w);
      }
    }
    return;
  }
}
