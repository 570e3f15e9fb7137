// Which samples an epoch of batches visits, beyond "all of them, maybe shuffled": an explicit
// order (`indices`, e.g. a DistributedSampler's) or this process's share of the epoch (`shard`).
// Shared by ImageDataset.batches() and StreamingDataset.batches().
import { InvalidArgumentError } from '../errors.js';
import * as v from '../validate.js';

/** One process's share of every epoch in data-parallel training. */
export interface ShardOptions {
  /** This process, in [0, worldSize). */
  rank: number;
  /** Processes sharing the epoch. */
  worldSize: number;
}

/** What a batches() call visits besides the whole set in order or shuffled. */
export type Selection = { indices: Int32Array } | { shard: ShardOptions };

/**
 * Samples each rank gets per epoch with `shard`: floor(length / worldSize), the same on every
 * rank (data-parallel steps must match); the length % worldSize samples at the end of the epoch's
 * order are left out, as DistributedSampler's drop_last does.
 */
export function shardLength(length: number, worldSize: number): number {
  v.nonNegativeInteger('length', length);
  v.positiveInteger('worldSize', worldSize);
  return Math.floor(length / worldSize);
}

/** Positions rank, rank + worldSize, ... of `order`, shardLength of them. */
export function shardOf(order: ArrayLike<number>, shard: ShardOptions): Int32Array {
  const out = new Int32Array(Math.floor(order.length / shard.worldSize));
  for (let k = 0, p = shard.rank; k < out.length; k++, p += shard.worldSize) out[k] = order[p]!;
  return out;
}

export function resolveShard(value: unknown): ShardOptions {
  const o = v.plainObject('shard', value);
  v.knownKeys('shard', o, ['rank', 'worldSize']);
  const worldSize = v.positiveInteger('shard.worldSize', o.worldSize);
  const rank = v.nonNegativeInteger('shard.rank', o.rank);
  if (rank >= worldSize) throw v.invalid(`integer in [0, ${worldSize}) (below shard.worldSize)`, 'shard.rank', rank);
  return { rank, worldSize };
}

/** A copy of `value` as sample indices of a set of `length`; repeats allowed. */
export function resolveIndices(value: unknown, length: number): Int32Array {
  const list = value as ArrayLike<unknown>;
  if (typeof value !== 'object' || value === null || !Number.isSafeInteger(list.length) || list.length < 0) {
    throw v.invalid('an array of sample indices', 'indices', value);
  }
  const out = new Int32Array(list.length);
  for (let k = 0; k < list.length; k++) {
    const i = list[k];
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= length) throw v.invalid(`integer in [0, ${length})`, `indices[${k}]`, i);
    out[k] = i;
  }
  return out;
}

/**
 * Checks the order options of batches() together: `indices` replaces the order, so it goes with
 * neither shuffle nor shard. Returns the selection, or null for the plain (maybe shuffled) epoch.
 */
export function resolveSelection(options: { shuffle: boolean; indices?: unknown; shard?: unknown }, length: number): Selection | null {
  if (options.indices !== undefined) {
    if (options.shuffle) {
      throw new InvalidArgumentError('Expected shuffle false (or unset) with indices: indices give the order, shuffle would replace it');
    }
    if (options.shard !== undefined) {
      throw new InvalidArgumentError('Expected indices or shard, not both: indices already say what this process visits');
    }
    return { indices: resolveIndices(options.indices, length) };
  }
  if (options.shard !== undefined) return { shard: resolveShard(options.shard) };
  return null;
}
