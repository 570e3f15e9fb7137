// A seeded train/validation split of one data set (fine-tuning sets often come without a
// validation folder). The order is a sort by SHA-256 of (seed, index): the same seed gives the
// same split on every machine and in every release, without a generator of our own to keep equal.
import { createHash } from 'node:crypto';
import * as v from '../validate.js';
import type { ImageDataset } from './dataset.js';

/** [train, val]: `fraction` of the images (rounded, at least 1, and at least 1 left) go to val.
 * Both share the set's memory and its mean/std. */
export function randomSplit(dataset: ImageDataset, fraction: number, seed = 0): [ImageDataset, ImageDataset] {
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) throw v.invalid('a number between 0 and 1 (exclusive)', 'fraction', fraction);
  v.nonNegativeInteger('seed', seed);
  const n = dataset.length;
  if (n < 2) throw v.invalid('a data set of at least 2 images to split', 'dataset', `${n} image(s)`);
  const valCount = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const key = (i: number) => createHash('sha256').update(`${seed}:${i}`).digest('hex');
  const keys = Array.from({ length: n }, (_, i) => key(i));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : 1));
  const val = order.slice(0, valCount).sort((a, b) => a - b);
  const train = order.slice(valCount).sort((a, b) => a - b);
  return [dataset.subset(train), dataset.subset(val)];
}
