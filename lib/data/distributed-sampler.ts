// torch.utils.data.DistributedSampler (PyTorch 1.13), index for index: each of numReplicas
// processes takes its own part of an epoch's order. Give its indices(epoch) to a data set's
// batches({ indices }) and a rank visits exactly what the PyTorch sampler would hand it.
import * as v from '../validate.js';
import { randperm, seedSum32 } from './torch-random.js';

export interface DistributedSamplerOptions {
  /** Processes taking part (PyTorch's num_replicas, the world size). */
  numReplicas: number;
  /** This process's rank, in [0, numReplicas). */
  rank: number;
  /** Shuffle with torch.randperm seeded by seed + epoch. Default true. */
  shuffle?: boolean;
  /** Must be the same on every rank. Default 0. */
  seed?: number;
  /** Leave out the tail that does not divide evenly, instead of padding with repeats from the start. Default false. */
  dropLast?: boolean;
}

/** Int32Array holds the indices. */
const maxLength = 2 ** 31 - 1;

export class DistributedSampler {
  readonly datasetLength: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices each rank gets per epoch (PyTorch's num_samples, len(sampler)). */
  readonly numSamples: number;
  /** numSamples * numReplicas: the epoch's order after padding or truncation. */
  readonly totalSize: number;

  constructor(datasetLength: number, options: DistributedSamplerOptions) {
    if (typeof datasetLength !== 'number' || !Number.isSafeInteger(datasetLength) || datasetLength < 0 || datasetLength > maxLength) {
      throw v.invalid(`integer in [0, ${maxLength}]`, 'datasetLength', datasetLength);
    }
    const o = v.plainObject('options', options);
    v.knownKeys('DistributedSampler', o, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast']);
    const numReplicas = v.positiveInteger('numReplicas', o.numReplicas);
    const rank = v.nonNegativeInteger('rank', o.rank);
    if (rank >= numReplicas) throw v.invalid(`integer in [0, ${numReplicas}) (below numReplicas)`, 'rank', rank);
    this.datasetLength = datasetLength;
    this.numReplicas = numReplicas;
    this.rank = rank;
    this.shuffle = o.shuffle === undefined ? true : v.boolean('shuffle', o.shuffle);
    this.seed = o.seed === undefined ? 0 : v.nonNegativeInteger('seed', o.seed);
    this.dropLast = o.dropLast === undefined ? false : v.boolean('dropLast', o.dropLast);
    // PyTorch: ceil((n - R) / R) with drop_last when R does not divide n, else ceil(n / R); the
    // first is floor(n / R) then (0 when n < R), in integers.
    this.numSamples = this.dropLast ? Math.floor(datasetLength / numReplicas) : Math.ceil(datasetLength / numReplicas);
    this.totalSize = this.numSamples * numReplicas;
  }

  /** This rank's indices for an epoch: what PyTorch's sampler yields after set_epoch(epoch). */
  indices(epoch: number): Int32Array {
    v.nonNegativeInteger('epoch', epoch);
    const n = this.datasetLength;
    const { numReplicas, rank } = this;
    // torch.Generator().manual_seed(seed + epoch): only the low 32 bits reach mt19937.
    const order = this.shuffle ? randperm(n, seedSum32(this.seed, epoch)) : null;
    const out = new Int32Array(this.numSamples);
    // Position p of the padded (or truncated) order is order[p % n]: padding repeats the order
    // from its start, as many times as needed; truncation keeps p < totalSize <= n.
    for (let k = 0, p = rank; k < out.length; k++, p += numReplicas) {
      const q = p % n;
      out[k] = order === null ? q : order[q]!;
    }
    return out;
  }
}
