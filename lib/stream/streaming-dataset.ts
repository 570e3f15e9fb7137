// A data set that stays on disk: each batch's images are read, decoded and transformed by a pool
// of worker threads (JPEGs by the addon's libjpeg-turbo path, other images by sharp) into the
// batch's shared memory, `prefetch` batches ahead of the consumer, so memory stays flat whatever
// the data set's size. It is a BatchSource: fit() and evaluate() take it as they take an
// in-memory ImageDataset.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Batch } from '../data/batch-iterator.js';
import { DataError } from '../data/errors.js';
import { resolveSelection, type Selection, type ShardOptions } from '../data/sample-order.js';
import { InvalidArgumentError, ResNetError } from '../errors.js';
import { defaultMaxPixels } from '../image/preprocess-options.js';
import { Tensor } from '../tensor.js';
import * as v from '../validate.js';
import { startWorker, terminateAll } from '../worker-start.js';
import { folderSource, webDatasetSource, type Sample, type SampleSource } from './sources.js';
import type { StreamDecoder, StreamReply, StreamTask, StreamWorkerData } from './stream-worker.js';
import { toPipeline, type Pipeline, type Transform } from './transforms.js';

export interface StreamingOptions {
  /** torchvision's transforms, e.g. [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.Normalize(mean, std)]. */
  transforms: Transform[];
  /** Worker threads. Default: the CPUs. */
  workers?: number;
  /**
   * Images queued per worker. Default 16: the addon's JPEG path decodes synchronously, one image
   * at a time, and a deep queue keeps a worker busy through the main thread's pauses (garbage
   * collection, the batch copy): 1,590-1,680 images/s against 1,430-1,470 with 4 (BENCHMARKS.md,
   * "Streaming").
   */
  perWorker?: number;
  /** Batches prepared ahead of the consumer. Default 2. */
  prefetch?: number;
  /** 'error' (default): a bad image or sample stops the epoch with a DataError naming it; 'skip': it is left out and counted. */
  onBadSample?: 'error' | 'skip';
  /** Largest image accepted, in pixels (Pillow's decompression-bomb limit by default). */
  maxPixels?: number;
  /**
   * 'auto' (default): JPEGs are decoded, cropped and resized by the addon (libjpeg-turbo and
   * Pillow's resampler, Pillow's bytes exactly) when it was built with libjpeg-turbo, other images
   * by sharp; 'sharp': every image by sharp (libvips' resampler for reductions, close to Pillow's).
   */
  decoder?: StreamDecoder;
}

export interface StreamBatchOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  dropLast?: boolean;
  /**
   * Visit exactly these sample indices, in this order (repeats allowed): e.g. a DistributedSampler's
   * `indices(epoch)`. A folder only: a WebDataset's shards are read in sequence (use `shard`).
   * Not with `shuffle: true` nor `shard`.
   */
  indices?: ArrayLike<number>;
  /**
   * This process's share of the epoch in data-parallel training: of the epoch's order (shuffled
   * when `shuffle` is true, by the same seed on every rank), the samples at positions rank,
   * rank + worldSize, ..., shardLength(length, worldSize) of them, so every rank gets as many.
   */
  shard?: ShardOptions;
  augment?: unknown;
}

/** What an epoch of batches did, for progress and for the end-of-epoch report. */
export interface StreamStats {
  images: number;
  /** Samples left out (onBadSample 'skip'), with the first few reasons. */
  skipped: number;
  skippedExamples: string[];
  /** Images per second the workers produced, over the time they had work. */
  pipelineImagesPerSecond: number;
  /** Seconds the consumer waited for a batch. */
  waitSeconds: number;
}

/**
 * The batch copy of the main thread: into memory the addon recycles (pre-faulted; a 38 MB batch
 * takes 2.6 ms instead of 20), or a plain copy when the addon cannot be loaded or cannot hand out
 * external memory (runtimes with V8's sandbox refuse external ArrayBuffers).
 */
let pooledCopy: Promise<((src: Float32Array) => Float32Array) | null> | undefined;
function loadPooledCopy(): Promise<((src: Float32Array) => Float32Array) | null> {
  pooledCopy ??= import('../native.js').then(
    ({ native }) => {
      let usable = true;
      return (src: Float32Array) => {
        if (usable) {
          try {
            return native.copyToPooled(src);
          } catch {
            usable = false;
          }
        }
        return new Float32Array(src);
      };
    },
    () => null,
  );
  return pooledCopy;
}

const optionNames = ['transforms', 'workers', 'perWorker', 'prefetch', 'onBadSample', 'maxPixels', 'decoder'];

interface Slot {
  worker: Worker;
  busy: number;
  failure?: Error;
}

interface Job {
  resolve(ms: number): void;
  reject(error: Error): void;
}

export class StreamingDataset {
  readonly classes: readonly string[];
  readonly length: number;
  /** [3, H, W] of every image */
  readonly imageShape: readonly [number, number, number];
  readonly #source: SampleSource;
  readonly #pipeline: Pipeline;
  readonly #workers: number;
  readonly #perWorker: number;
  readonly #prefetch: number;
  readonly #skip: boolean;
  readonly #maxPixels: number;
  readonly #decoder: StreamDecoder;
  #slots: Slot[] = [];
  #jobs = new Map<number, Job>();
  /** Tasks waiting for a worker with room: at most perWorker images are decoded per worker at once. */
  #waiting: StreamTask[] = [];
  #nextId = 1;
  #closed = false;

  private constructor(source: SampleSource, options: StreamingOptions) {
    this.#source = source;
    this.classes = Object.freeze([...source.classes]);
    this.length = source.length;
    this.#pipeline = toPipeline(options.transforms);
    this.imageShape = Object.freeze([3, ...this.#pipeline.size]) as readonly [number, number, number];
    this.#workers = v.positiveInteger('workers', options.workers ?? availableParallelism());
    this.#perWorker = v.positiveInteger('perWorker', options.perWorker ?? 16);
    this.#prefetch = v.positiveInteger('prefetch', options.prefetch ?? 2);
    this.#skip = v.oneOf('onBadSample', options.onBadSample ?? 'error', ['error', 'skip'] as const) === 'skip';
    this.#maxPixels = v.positiveInteger('maxPixels', options.maxPixels ?? defaultMaxPixels);
    this.#decoder = v.oneOf('decoder', options.decoder ?? 'auto', ['auto', 'sharp'] as const);
  }

  /** Whether batches() takes `indices` (a folder: yes; WebDataset shards, read in sequence: no, use `shard`). */
  get randomAccess(): boolean {
    return this.#source.randomAccess;
  }

  static #check(options: StreamingOptions): StreamingOptions {
    v.knownKeys('streaming options', v.plainObject('options', options), optionNames);
    toPipeline(options.transforms);
    return options;
  }

  /** root/<class>/<images>, torchvision's ImageFolder layout and class order; files stay on disk. */
  static async fromFolder(root: string, options: StreamingOptions): Promise<StreamingDataset> {
    if (typeof root !== 'string' || root === '') throw v.invalid('a folder path', 'root', root);
    return new StreamingDataset(await folderSource(root), StreamingDataset.#check(options));
  }

  /** WebDataset tar shards (`key.jpg` + `key.cls`), read in sequence; the shard order is shuffled per epoch. */
  static async fromWebDataset(shards: string | readonly string[], options: StreamingOptions & { classes?: readonly string[] }): Promise<StreamingDataset> {
    const list = typeof shards === 'string' ? [shards] : shards;
    if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) throw v.invalid('a shard path or a non-empty array of them', 'shards', shards);
    const { classes, ...rest } = options;
    if (classes !== undefined && (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string'))) throw v.invalid('an array of class names', 'classes', classes);
    StreamingDataset.#check(rest);
    const source = await webDatasetSource(list, {
      ...(classes !== undefined && { classes }),
      // With 'skip', an incomplete sample is left out of the index (and so of every epoch).
      ...(rest.onBadSample === 'skip' && { onBad: () => {} }),
    });
    return new StreamingDataset(source, rest);
  }

  #spawn(): Slot {
    const data: StreamWorkerData = { pipeline: this.#pipeline, maxPixels: this.#maxPixels, decoder: this.#decoder };
    const slot: Slot = { worker: startWorker('stream-worker', import.meta.url, { workerData: data }), busy: 0 };
    slot.worker.unref();
    slot.worker.on('message', (reply: StreamReply) => {
      slot.busy--;
      if (slot.busy === 0) slot.worker.unref();
      this.#pump();
      const job = this.#jobs.get(reply.id);
      if (!job) return;
      this.#jobs.delete(reply.id);
      if ('error' in reply) job.reject(new Error(reply.error));
      else job.resolve(reply.ms);
    });
    slot.worker.on('error', (error) => {
      slot.failure = error;
    });
    slot.worker.on('exit', (code) => {
      this.#slots = this.#slots.filter((s) => s !== slot);
      const error = new ResNetError(`A streaming worker ${slot.failure ? `failed: ${slot.failure.message}` : `exited (code ${code})`}`, { cause: slot.failure });
      // Its jobs cannot be told apart here: every waiting job fails, and the epoch with them.
      if (!this.#closed) for (const [id, job] of this.#jobs) (this.#jobs.delete(id), job.reject(error));
    });
    return slot;
  }

  #run(task: Omit<StreamTask, 'id'>): Promise<number> {
    if (this.#closed) return Promise.reject(new ResNetError('The streaming data set is closed'));
    while (this.#slots.length < this.#workers) this.#slots.push(this.#spawn());
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      this.#waiting.push({ ...task, id });
      this.#pump();
    });
  }

  /** Hands waiting tasks to the least busy workers that have room. */
  #pump(): void {
    while (this.#waiting.length > 0 && this.#slots.length > 0) {
      const slot = this.#slots.reduce((a, b) => (b.busy < a.busy ? b : a));
      if (slot.busy >= this.#perWorker) return;
      const task = this.#waiting.shift()!;
      if (!this.#jobs.has(task.id)) continue; // failed or closed meanwhile
      slot.busy++;
      slot.worker.ref();
      // Tar members arrive as their own buffers: moved, not copied.
      slot.worker.postMessage(task, task.bytes ? [task.bytes.buffer as ArrayBuffer] : []);
    }
  }

  /**
   * The batches of one epoch: `for await (const { images, labels } of data.batches({ batchSize: 64, shuffle: true, seed, epoch }))`.
   * Same seed and epoch, same order and same crops. The iterator's `stats()` says what the epoch did.
   */
  batches(options: StreamBatchOptions): AsyncIterableIterator<Batch> & { stats(): StreamStats } {
    v.knownKeys('batches', v.plainObject('options', options), ['batchSize', 'shuffle', 'seed', 'epoch', 'dropLast', 'indices', 'shard', 'augment']);
    if (options.augment !== undefined) {
      throw new InvalidArgumentError('Expected no augment option for a streaming data set: its transforms (T.RandomResizedCrop, T.RandomHorizontalFlip, ...) are given when it is opened');
    }
    const batchSize = v.positiveInteger('batchSize', options.batchSize);
    const seed = v.nonNegativeInteger('seed', options.seed ?? 0);
    const epoch = v.nonNegativeInteger('epoch', options.epoch ?? 0);
    const shuffle = v.boolean('shuffle', options.shuffle ?? false);
    const dropLast = v.boolean('dropLast', options.dropLast ?? false);
    if (options.indices !== undefined && !this.#source.randomAccess) {
      throw new InvalidArgumentError(
        'Expected no indices option for a WebDataset source: its shards are read in sequence, not sample by sample; shard: { rank, worldSize } splits an epoch between processes',
      );
    }
    const selection = resolveSelection({ shuffle, indices: options.indices, shard: options.shard }, this.length);
    return this.#epoch(batchSize, seed, epoch, shuffle, dropLast, selection);
  }

  #epoch(
    batchSize: number,
    seed: number,
    epoch: number,
    shuffle: boolean,
    dropLast: boolean,
    selection: Selection | null,
  ): AsyncIterableIterator<Batch> & { stats(): StreamStats } {
    const [, height, width] = this.imageShape;
    const imageFloats = 3 * height * width;
    const stats: StreamStats = { images: 0, skipped: 0, skippedExamples: [], pipelineImagesPerSecond: 0, waitSeconds: 0 };
    const samples = this.#source.epoch(seed, epoch, shuffle, selection)[Symbol.asyncIterator]();
    let exhausted = false;
    let failed: Error | null = null;
    let busySince: number | null = null;
    let busyMs = 0;
    let inFlight = 0;
    const started = () => {
      if (inFlight++ === 0) busySince = performance.now();
    };
    const finished = () => {
      if (--inFlight === 0 && busySince !== null) busyMs += performance.now() - busySince;
    };
    const nextSample = async (): Promise<Sample | null> => {
      if (exhausted) return null;
      const r = await samples.next();
      if (r.done) exhausted = true;
      return r.done ? null : r.value;
    };

    // The workers write into shared buffers, reused batch after batch: each batch is handed out as
    // a copy in an ordinary buffer. (Fresh 38 MB SharedArrayBuffers per batch piled up to a
    // gigabyte before V8 collected them; ordinary ones are collected as they go.) The copy goes
    // into memory the addon recycles (loadPooledCopy): into fresh memory, its page faults made it
    // the main thread's largest cost, a third of a core at 1,100 images/s.
    const spare: SharedArrayBuffer[] = [];
    /** Fills one batch: each slot takes samples until one decodes (skip) or the first fails (error). */
    const build = async (): Promise<Batch | null> => {
      const out = spare.pop() ?? new SharedArrayBuffer(batchSize * imageFloats * 4);
      try {
        return await fillBatch(out, await loadPooledCopy());
      } finally {
        spare.push(out);
      }
    };
    const fillBatch = async (out: SharedArrayBuffer, copy: ((src: Float32Array) => Float32Array) | null): Promise<Batch | null> => {
      const labels: number[] = [];
      const indices: number[] = [];
      const fill = async (slot: number): Promise<boolean> => {
        for (;;) {
          if (failed) return false;
          const sample = await nextSample();
          if (!sample) return false;
          started();
          try {
            await this.#run({
              ...(sample.file !== undefined && { file: sample.file }),
              ...(sample.bytes !== undefined && { bytes: sample.bytes }),
              index: sample.index, seed, epoch, out, offset: slot * imageFloats,
            });
            labels[slot] = sample.label;
            indices[slot] = sample.index;
            return true;
          } catch (error) {
            const reason = `Cannot decode image '${sample.name}': ${(error as Error).message}`;
            if (error instanceof ResNetError || !this.#skip) {
              failed ??= error instanceof ResNetError ? error : new DataError(reason, { file: sample.name, cause: error });
              return false;
            }
            stats.skipped++;
            if (stats.skippedExamples.length < 5) stats.skippedExamples.push(reason);
          } finally {
            finished();
          }
        }
      };
      // Samples are taken in order (nextSample is awaited one at a time per slot), so the batch's
      // slots are filled in epoch order whatever the decoding order.
      // Settled, every one: the buffer goes back to the spares only when no worker writes into it.
      const settled = await Promise.allSettled(Array.from({ length: batchSize }, (_, slot) => fill(slot)));
      for (const r of settled) if (r.status === 'rejected') failed ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
      if (failed) throw failed;
      const filled = settled.map((r) => r.status === 'fulfilled' && r.value);
      // Slots that got no image (the epoch ran out) are compacted away.
      const kept = filled.flatMap((ok, slot) => (ok ? [slot] : []));
      if (kept.length === 0 || (dropLast && kept.length < batchSize)) return null;
      const shared = new Float32Array(out);
      let images: Float32Array;
      if (kept.length === batchSize) images = copy ? copy(shared) : new Float32Array(shared);
      else {
        images = new Float32Array(kept.length * imageFloats);
        kept.forEach((slot, k) => images.set(shared.subarray(slot * imageFloats, (slot + 1) * imageFloats), k * imageFloats));
      }
      stats.images += kept.length;
      return {
        images: new Tensor(images, [kept.length, 3, height, width]),
        labels: new Tensor(BigInt64Array.from(kept, (slot) => BigInt(labels[slot]!)), [kept.length]),
        indices: Int32Array.from(kept, (slot) => indices[slot]!),
      };
    };

    // Up to `prefetch` batches are being built while the consumer works on one.
    const queue: Array<Promise<Batch | null>> = [];
    let ended = false;
    const topUp = () => {
      while (!ended && queue.length < this.#prefetch) {
        const p = build();
        p.catch(() => {}); // observed when its turn comes
        queue.push(p);
      }
    };
    const iterator = {
      async next(): Promise<IteratorResult<Batch>> {
        if (ended) return { done: true, value: undefined };
        topUp();
        const waitStart = performance.now();
        try {
          const batch = await queue.shift()!;
          stats.waitSeconds += (performance.now() - waitStart) / 1000;
          stats.pipelineImagesPerSecond = busyMs > 0 ? stats.images / (busyMs / 1000) : 0;
          if (batch === null) {
            ended = true;
            return { done: true, value: undefined };
          }
          topUp();
          return { done: false, value: batch };
        } catch (error) {
          ended = true;
          throw error;
        }
      },
      async return(): Promise<IteratorResult<Batch>> {
        ended = true;
        exhausted = true;
        await samples.return?.(undefined);
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
      stats: () => ({ ...stats, skippedExamples: [...stats.skippedExamples] }),
    };
    return iterator;
  }

  /** Ends the worker threads (they also end by themselves with the process). */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots;
    this.#slots = [];
    this.#waiting = [];
    for (const [id, job] of this.#jobs) (this.#jobs.delete(id), job.reject(new ResNetError('The streaming data set was closed')));
    await terminateAll(slots.map((s) => s.worker));
  }
}
