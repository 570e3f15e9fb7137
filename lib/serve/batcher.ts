// Dynamic batching: images of requests that arrive close together run as one forward.
//
// Requests put their images ([1, C, H, W] each) on one shared FIFO queue. Each replica, when idle,
// takes the oldest image and the next images with the same task and size, up to `maxBatch`, as
// soon as it has `maxBatch` of them or the oldest has waited `maxDelayMs` (0 by default: at once,
// so batches are what queued while the replicas were busy). A replica runs one
// batch at a time (its executor thread would serialise them anyway); replicas run in parallel.
// The outputs ([B, ...] per named output) are cut back into one row per image, and a request
// resolves when all of its images have their rows. The queue is bounded in images (`maxQueue`):
// a request that does not fit is refused at once (QueueFullError). A request that is not done
// within `timeoutMs` rejects with RequestTimeoutError, and its images still waiting leave the
// queue (those already running finish, and their rows are dropped).
import { ResNetError } from '../errors.js';
import { formatShape, numelOf, Tensor } from '../tensor.js';
import * as v from '../validate.js';
import { ClientClosedError, PayloadTooLargeError, QueueFullError, RequestTimeoutError, ShuttingDownError } from './errors.js';

/** One named output of a batched call: [B, ...] float32, with optional feature-map metadata. */
export interface BatchTensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  readonly stride?: number;
  readonly channels?: number;
}

/** What to run on a batch. Requests whose tasks have the same `key` may share a batch. */
export interface BatchTask<M> {
  readonly key: string;
  run(model: M, batch: Tensor<Float32Array>): Promise<Record<string, BatchTensor>>;
}

/** One image's row of each output: `shape` without the batch dimension; `data` is a view. */
export interface OutputSlice {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  readonly stride?: number;
  readonly channels?: number;
}

export type ImageOutput = Record<string, OutputSlice>;

export interface BatchInfo {
  /** Images in the batch. */
  size: number;
  /** Requests that had images in it. */
  requests: number;
  /** Index of the replica that ran it. */
  replica: number;
  /** How long its oldest image waited in the queue. */
  waitMs: number;
  /** How long the call took. */
  runMs: number;
  /** Set when the call failed. */
  error?: unknown;
}

export interface BatcherOptions<M> {
  /** The models that take batches from the shared queue; at least one. */
  replicas: readonly M[];
  /** Images per forward at most (1 turns batching off). Default 16. */
  maxBatch?: number;
  /**
   * How long the oldest queued image may wait for others to join its batch while a replica is idle.
   * Default 0: an idle replica takes what is queued at once, and batches form from what queues
   * while the replicas are busy (a lone request does not pay a wait; a busy server still batches).
   */
  maxDelayMs?: number;
  /** Images waiting (not yet running) at most; a request that does not fit is refused. Default 256. */
  maxQueue?: number;
  /** A request not done in this time rejects with RequestTimeoutError. Default 30000. */
  timeoutMs?: number;
  /** Called after every batch, for metrics and logs. */
  onBatch?: (info: BatchInfo) => void;
}

export interface SubmitOptions {
  /** Aborting drops the request's waiting images and rejects it with ClientClosedError. */
  signal?: AbortSignal;
}

const optionNames = ['replicas', 'maxBatch', 'maxDelayMs', 'maxQueue', 'timeoutMs', 'onBatch'];

interface Job<M> {
  readonly task: BatchTask<M>;
  readonly images: readonly Tensor<Float32Array>[];
  readonly outputs: (ImageOutput | undefined)[];
  remaining: number;
  settled: boolean;
  resolve(outputs: ImageOutput[]): void;
  reject(error: unknown): void;
  cleanup(): void;
}

interface Item<M> {
  readonly job: Job<M>;
  readonly index: number;
  /** Task key and image shape: items with equal keys can share a batch. */
  readonly key: string;
  readonly enqueuedAt: number;
}

export class Batcher<M> {
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly timeoutMs: number;
  readonly #replicas: readonly M[];
  readonly #busy: boolean[];
  readonly #onBatch: ((info: BatchInfo) => void) | undefined;
  #queue: Item<M>[] = [];
  #running = 0;
  #pendingRequests = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closing = false;
  #drainWaiters: (() => void)[] = [];
  /** Moving average of a batch's run time, for Retry-After. */
  #batchMs = 0;

  constructor(options: BatcherOptions<M>) {
    v.knownKeys('Batcher', v.plainObject('options', options), optionNames);
    if (!Array.isArray(options.replicas) || options.replicas.length === 0) {
      throw v.invalid('a non-empty array of models', 'replicas', options.replicas);
    }
    this.#replicas = [...options.replicas];
    this.#busy = this.#replicas.map(() => false);
    this.maxBatch = v.positiveInteger('maxBatch', options.maxBatch ?? 16);
    this.maxDelayMs = v.nonNegativeInteger('maxDelayMs', options.maxDelayMs ?? 0);
    this.maxQueue = v.positiveInteger('maxQueue', options.maxQueue ?? 256);
    this.timeoutMs = v.positiveInteger('timeoutMs', options.timeoutMs ?? 30000);
    if (options.onBatch !== undefined && typeof options.onBatch !== 'function') throw v.invalid('a function', 'onBatch', options.onBatch);
    this.#onBatch = options.onBatch;
  }

  /** Images waiting in the queue (not yet running). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Images in batches that are running now. */
  get running(): number {
    return this.#running;
  }

  /** Requests submitted and not yet settled. */
  get pendingRequests(): number {
    return this.#pendingRequests;
  }

  /** Replicas running a batch now. */
  get busyReplicas(): number {
    return this.#busy.filter(Boolean).length;
  }

  get replicaCount(): number {
    return this.#replicas.length;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Queues `images` (each [1, C, H, W] float32) for `task` and resolves with one output per image,
   * in order. Rejects at once with QueueFullError when they do not fit, ShuttingDownError after
   * close(); later with RequestTimeoutError, ClientClosedError (signal) or the task's error.
   */
  submit(task: BatchTask<M>, images: readonly Tensor<Float32Array>[], options: SubmitOptions = {}): Promise<ImageOutput[]> {
    try {
      if (this.#closing) throw new ShuttingDownError('The server is shutting down');
      if (!Array.isArray(images) || images.length === 0) throw v.invalid('a non-empty array of images', 'images', images);
      for (const image of images) {
        if (!(image instanceof Tensor) || image.dtype !== 'float32' || image.ndim !== 4 || image.shape[0] !== 1) {
          throw v.invalid('float32 tensors of shape [1, C, H, W]', 'images', image);
        }
      }
      this.checkRoom(images.length);
      if (options.signal?.aborted) throw new ClientClosedError('The request was aborted');
    } catch (error) {
      return Promise.reject(error);
    }

    return new Promise<ImageOutput[]>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = () => fail(new ClientClosedError('The request was aborted'));
      const timer = setTimeout(
        () => fail(new RequestTimeoutError(`The request was not answered within ${this.timeoutMs} ms (timeoutMs)`)),
        this.timeoutMs,
      );
      const job: Job<M> = {
        task,
        images,
        outputs: images.map(() => undefined),
        remaining: images.length,
        settled: false,
        resolve: (outputs) => {
          job.cleanup();
          resolve(outputs);
        },
        reject: (error) => {
          job.cleanup();
          reject(error);
        },
        cleanup: () => {
          job.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.#pendingRequests--;
        },
      };
      const fail = (error: unknown) => {
        if (job.settled) return;
        this.#queue = this.#queue.filter((item) => item.job !== job);
        job.reject(error);
        this.#checkDrained();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pendingRequests++;
      const now = performance.now();
      images.forEach((image, index) => {
        this.#queue.push({ job, index, key: `${task.key}|${image.shape.slice(1).join('x')}`, enqueuedAt: now });
      });
      this.#pump();
    });
  }

  /**
   * Takes no new requests (they reject with ShuttingDownError), runs what is queued without
   * waiting for batches to fill, and resolves when nothing is queued or running.
   */
  close(): Promise<void> {
    this.#closing = true;
    this.#pump();
    return this.drained();
  }

  /** Resolves when nothing is queued or running (at once if idle). */
  drained(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#running === 0;
  }

  #checkDrained(): void {
    if (!this.#idle()) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * Throws what submit() would for `count` more images now (shutting down, over maxQueue, queue
   * full), so a caller can refuse a request before spending anything on it (decoding its images).
   */
  checkRoom(count: number): void {
    if (this.#closing) throw new ShuttingDownError('The server is shutting down');
    if (count > this.maxQueue) {
      throw new PayloadTooLargeError(`A request may hold ${this.maxQueue} images at most (maxQueue) but this one has ${count}`);
    }
    if (this.#queue.length + count > this.maxQueue) {
      throw new QueueFullError(`The queue is full (${this.#queue.length} of ${this.maxQueue} images waiting); try again later`, this.#retryAfterSeconds());
    }
  }

  #retryAfterSeconds(): number {
    const batchesAhead = Math.ceil(this.#queue.length / this.maxBatch) + 1;
    return (batchesAhead * this.#batchMs) / this.#replicas.length / 1000;
  }

  /** Hands batches to idle replicas while there are batches ready; otherwise waits for the oldest. */
  #pump(): void {
    for (;;) {
      const replica = this.#busy.indexOf(false);
      if (replica === -1 || this.#queue.length === 0) return;
      const head = this.#queue[0]!;
      const batch: Item<M>[] = [];
      const rest: Item<M>[] = [];
      for (const item of this.#queue) {
        if (batch.length < this.maxBatch && item.key === head.key) batch.push(item);
        else rest.push(item);
      }
      const waited = performance.now() - head.enqueuedAt;
      if (batch.length < this.maxBatch && waited < this.maxDelayMs && !this.#closing) {
        this.#wakeAt(head.enqueuedAt + this.maxDelayMs);
        return;
      }
      this.#queue = rest;
      void this.#run(replica, batch, waited);
    }
  }

  #wakeAt(at: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#pump();
    }, Math.max(0, at - performance.now()));
  }

  async #run(replica: number, items: Item<M>[], waitMs: number): Promise<void> {
    this.#busy[replica] = true;
    this.#running += items.length;
    const started = performance.now();
    const task = items[0]!.job.task;
    let error: unknown;
    try {
      const input = items.length === 1 ? items[0]!.job.images[items[0]!.index]! : concat(items.map((it) => it.job.images[it.index]!));
      const outputs = await task.run(this.#replicas[replica]!, input);
      const rows = splitRows(outputs, items.length);
      items.forEach((item, i) => {
        const job = item.job;
        if (job.settled) return;
        job.outputs[item.index] = rows[i]!;
        if (--job.remaining === 0) job.resolve(job.outputs as ImageOutput[]);
      });
    } catch (e) {
      error = e;
      for (const item of items) {
        const job = item.job;
        if (job.settled) continue;
        this.#queue = this.#queue.filter((it) => it.job !== job);
        job.reject(e);
      }
    } finally {
      const runMs = performance.now() - started;
      this.#batchMs = this.#batchMs === 0 ? runMs : 0.8 * this.#batchMs + 0.2 * runMs;
      this.#busy[replica] = false;
      this.#running -= items.length;
      const requests = new Set(items.map((it) => it.job)).size;
      try {
        this.#onBatch?.({ size: items.length, requests, replica, waitMs, runMs, ...(error !== undefined && { error }) });
      } catch {
        // A metrics callback must not break the batcher.
      }
      this.#pump();
      this.#checkDrained();
    }
  }
}

/** Stacks [1, ...] tensors of one shape into [B, ...]. */
function concat(images: Tensor<Float32Array>[]): Tensor<Float32Array> {
  const first = images[0]!;
  const per = first.data.length;
  const data = new Float32Array(per * images.length);
  images.forEach((image, i) => data.set(image.data, i * per));
  return new Tensor(data, [images.length, ...first.shape.slice(1)]);
}

/** Cuts each [B, ...] output into B rows (views, no copies). */
function splitRows(outputs: Record<string, BatchTensor>, batch: number): ImageOutput[] {
  const rows: ImageOutput[] = Array.from({ length: batch }, () => ({}));
  for (const [name, out] of Object.entries(outputs)) {
    if (out.shape[0] !== batch || numelOf(out.shape) !== out.data.length) {
      throw new ResNetError(`Expected output ${name} of shape [${batch}, ...] but received ${formatShape(out.shape)}`);
    }
    const shape = out.shape.slice(1);
    const per = numelOf(shape);
    for (let i = 0; i < batch; i++) {
      rows[i]![name] = {
        data: out.data.subarray(i * per, (i + 1) * per),
        shape,
        ...(out.stride !== undefined && { stride: out.stride }),
        ...(out.channels !== undefined && { channels: out.channels }),
      };
    }
  }
  return rows;
}
