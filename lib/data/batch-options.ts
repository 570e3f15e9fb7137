// The options of ImageDataset.batches(): validation (messages in lib/validate.ts's shape) and the
// resolved form that the batch worker receives.
import { randomInt } from 'node:crypto';
import * as v from '../validate.js';
import { epochOrder } from './augment.js';
import { resolveSelection, shardOf, type ShardOptions } from './sample-order.js';

export interface RandomErasingOptions {
  /** Probability that an image is erased. Default 0.5. */
  p?: number;
  /** Range of the erased area as a fraction of the image. Default [0.02, 0.33]. */
  scale?: [number, number];
  /** Range of the erased rectangle's aspect ratio (height / width). Default [0.3, 3.3]. */
  ratio?: [number, number];
  /** The value written (after normalisation), or 'random' for standard normal noise. Default 0. */
  value?: number | 'random';
}

export interface AugmentOptions {
  /** Zero-pad by `padding` on each side, then cut a random H x W window: RandomCrop(H, padding). */
  crop?: { padding: number };
  /** Mirror left-right with probability 0.5. Applied after the crop. */
  hflip?: boolean;
  /** torchvision's RandomErasing, on the normalised image. */
  randomErasing?: RandomErasingOptions;
}

export interface BatchOptions {
  batchSize: number;
  /** Visit the images in a seeded random order, a different one per epoch. Default false. */
  shuffle?: boolean;
  /** Seeds the order and the augmentation. Default: random (read it back from iterator.seed). */
  seed?: number;
  /** Selects the epoch's order and augmentation: same seed and epoch, same batches. Default 0. */
  epoch?: number;
  /** Leave out a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
  /**
   * Visit exactly these sample indices, in this order (repeats allowed), instead of 0 .. n-1 or a
   * shuffle: e.g. a DistributedSampler's `indices(epoch)`. Not with `shuffle: true` nor `shard`.
   */
  indices?: ArrayLike<number>;
  /**
   * This process's share of the epoch in data-parallel training: of the epoch's order (shuffled
   * when `shuffle` is true, by the same seed on every rank), the samples at positions rank,
   * rank + worldSize, ..., shardLength(length, worldSize) of them, so every rank gets as many.
   */
  shard?: ShardOptions;
  /** Per-channel mean and std of pixel / 255. Default: the dataset's own. */
  normalize?: { mean: readonly number[]; std: readonly number[] };
  augment?: AugmentOptions;
  /** Batches built ahead of the one the consumer holds. Default 2; 0 builds on demand. */
  prefetch?: number;
}

export interface ResolvedErasing {
  p: number;
  scale: [number, number];
  logRatio: [number, number];
  value: number | 'random';
}

export interface ResolvedBatchOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  epoch: number;
  dropLast: boolean;
  prefetch: number;
  /** The epoch's sample order when `indices` or `shard` chose it; null: 0 .. n-1 or the worker's shuffle. */
  order: Int32Array | null;
  /** normalised value of (channel, byte) at [channel * 256 + byte] */
  table: Float32Array;
  padding: number | null;
  hflip: boolean;
  erasing: ResolvedErasing | null;
}

function finiteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw v.invalid('finite number', name, value);
  return value;
}

function numberBetween(name: string, value: unknown, low: number, high: number): number {
  if (typeof value !== 'number' || !(value >= low && value <= high)) throw v.invalid(`number between ${low} and ${high}`, name, value);
  return value;
}

function range(name: string, value: unknown, check: (x: number) => boolean, what: string): [number, number] {
  const ok = Array.isArray(value) && value.length === 2 && value.every((x) => typeof x === 'number' && check(x)) && value[0] <= value[1];
  if (!ok) throw v.invalid(`[low, high] with low <= high, both ${what}`, name, value);
  return [value[0], value[1]];
}

/** Checks one mean/std pair against the channel count; std must be > 0. */
export function meanStd(name: string, mean: unknown, std: unknown, channels: number): { mean: number[]; std: number[] } {
  const list = (key: string, value: unknown, positive: boolean) => {
    const ok =
      Array.isArray(value) &&
      value.length === channels &&
      value.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
    if (!ok) throw v.invalid(`an array of ${channels} finite numbers${positive ? ' > 0' : ''}`, `${name}.${key}`, value);
    return [...(value as number[])];
  };
  return { mean: list('mean', mean, false), std: list('std', std, true) };
}

/** torchvision's arithmetic in float32: ToTensor divides by 255, Normalize subtracts then divides.
 * A table of the 256 results per channel makes normalising a lookup, exact to PyTorch's bits. */
export function normalizationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const f = Math.fround;
  const table = new Float32Array(mean.length * 256);
  for (let c = 0; c < mean.length; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let byte = 0; byte < 256; byte++) table[c * 256 + byte] = f(f(f(byte / 255) - m) / s);
  }
  return table;
}

function resolveErasing(value: unknown): ResolvedErasing {
  const o = v.plainObject('augment.randomErasing', value);
  v.knownKeys('augment.randomErasing', o, ['p', 'scale', 'ratio', 'value']);
  const p = o.p === undefined ? 0.5 : numberBetween('augment.randomErasing.p', o.p, 0, 1);
  const scale = o.scale === undefined ? ([0.02, 0.33] as [number, number]) : range('augment.randomErasing.scale', o.scale, (x) => x >= 0 && x <= 1, 'in [0, 1]');
  const ratio = o.ratio === undefined ? ([0.3, 3.3] as [number, number]) : range('augment.randomErasing.ratio', o.ratio, (x) => x > 0 && Number.isFinite(x), 'finite and > 0');
  const erase = o.value === undefined ? 0 : o.value === 'random' ? 'random' : finiteNumber('augment.randomErasing.value', o.value);
  return { p, scale, logRatio: [Math.log(ratio[0]), Math.log(ratio[1])], value: erase };
}

export function resolveBatchOptions(
  options: unknown,
  dataset: { channels: number; mean: readonly number[]; std: readonly number[]; length?: number },
): ResolvedBatchOptions {
  const o = v.plainObject('options', options);
  v.knownKeys('batches', o, ['batchSize', 'shuffle', 'seed', 'epoch', 'dropLast', 'indices', 'shard', 'normalize', 'augment', 'prefetch']);
  const batchSize = v.positiveInteger('batchSize', o.batchSize);
  const shuffle = o.shuffle === undefined ? false : v.boolean('shuffle', o.shuffle);
  const seed = o.seed === undefined ? randomInt(0, 2 ** 48 - 1) : v.nonNegativeInteger('seed', o.seed);
  const epoch = o.epoch === undefined ? 0 : v.nonNegativeInteger('epoch', o.epoch);
  const dropLast = o.dropLast === undefined ? false : v.boolean('dropLast', o.dropLast);
  const prefetch = o.prefetch === undefined ? 2 : v.nonNegativeInteger('prefetch', o.prefetch);
  let order: Int32Array | null = null;
  if (o.indices !== undefined || o.shard !== undefined) {
    if (dataset.length === undefined) throw new TypeError('resolveBatchOptions: indices and shard need the data set\'s length');
    const selection = resolveSelection({ shuffle, indices: o.indices, shard: o.shard }, dataset.length);
    if (selection !== null) order = 'indices' in selection ? selection.indices : shardOf(epochOrder(dataset.length, shuffle, seed, epoch), selection.shard);
  }
  let { mean, std } = dataset;
  if (o.normalize !== undefined) {
    const n = v.plainObject('normalize', o.normalize);
    v.knownKeys('normalize', n, ['mean', 'std']);
    ({ mean, std } = meanStd('normalize', n.mean, n.std, dataset.channels));
  }
  let padding: number | null = null;
  let hflip = false;
  let erasing: ResolvedErasing | null = null;
  if (o.augment !== undefined) {
    const a = v.plainObject('augment', o.augment);
    v.knownKeys('augment', a, ['crop', 'hflip', 'randomErasing']);
    if (a.crop !== undefined) {
      const crop = v.plainObject('augment.crop', a.crop);
      v.knownKeys('augment.crop', crop, ['padding']);
      padding = v.nonNegativeInteger('augment.crop.padding', crop.padding);
    }
    if (a.hflip !== undefined) hflip = v.boolean('augment.hflip', a.hflip);
    if (a.randomErasing !== undefined) erasing = resolveErasing(a.randomErasing);
  }
  return { batchSize, shuffle, seed, epoch, dropLast, prefetch, order, table: normalizationTable(mean, std), padding, hflip, erasing };
}
