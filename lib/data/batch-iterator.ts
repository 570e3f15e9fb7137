// The main-thread side of batching: one worker thread per iterator (lib/data/batch-worker.js)
// builds the batches; this class keeps `prefetch` requests ahead of the consumer, hands batches
// out in order, and ends the worker when the batches run out or the consumer stops early.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ResNetError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { ResolvedBatchOptions } from './batch-options.js';

export interface Batch {
  /** [B, C, H, W], normalised (and augmented) */
  images: Tensor<Float32Array>;
  /** [B], int64 as PyTorch's cross-entropy wants */
  labels: Tensor<BigInt64Array>;
  /** each image's index in the dataset the batches came from */
  indices: Int32Array;
}

/** What the worker reads: shared pixel and label memory, and how to index it. */
export interface BatchSource {
  pixels: Uint8Array;
  labels: Int32Array;
  positions: Int32Array | null;
  channels: number;
  height: number;
  width: number;
  length: number;
}

interface Reply {
  index: number;
  size?: number;
  images?: ArrayBuffer;
  labels?: ArrayBuffer;
  indices?: ArrayBuffer;
  buildMs?: number;
  error?: string;
  stack?: string;
}

/** After tsc, dist/lib/data/ holds no copy of the worker unless the build copies it: then use the
 * one in lib/, which the package ships too. */
function workerScript(): URL {
  const beside = new URL('./batch-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL('../../../lib/data/batch-worker.js', import.meta.url);
}

const closed = Symbol('closed');
type Item = Batch | Error;

export class BatchIterator implements AsyncIterableIterator<Batch>, AsyncDisposable {
  readonly numBatches: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly epoch: number;
  readonly prefetch: number;
  #source: BatchSource;
  #options: ResolvedBatchOptions;
  #worker: Worker | null = null;
  #requested = 0;
  #received = 0;
  #consumed = 0;
  #buildMs = 0;
  #waitMs = 0;
  #ready = new Map<number, Item>();
  #waiter: ((item: Item | typeof closed) => void) | null = null;
  #failure: Error | null = null;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: BatchSource, options: ResolvedBatchOptions) {
    this.#source = source;
    this.#options = options;
    this.batchSize = options.batchSize;
    this.seed = options.seed;
    this.epoch = options.epoch;
    this.prefetch = options.prefetch;
    const count = options.order?.length ?? source.length; // indices or shard: the order's samples
    this.numBatches = options.dropLast ? Math.floor(count / options.batchSize) : Math.ceil(count / options.batchSize);
  }

  /** Batches that have arrived from the worker so far. */
  get produced(): number {
    return this.#received;
  }
  /** Batches handed to the consumer so far. */
  get consumed(): number {
    return this.#consumed;
  }
  /** Milliseconds next() spent waiting for a batch that was not ready yet, in total. */
  get waitMs(): number {
    return this.#waitMs;
  }
  /** Milliseconds the worker spent building the batches received, in total. */
  get buildMs(): number {
    return this.#buildMs;
  }
  /** Whether a worker thread is currently running for this iterator. */
  get running(): boolean {
    return this.#worker !== null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Calls are served one at a time, so next() may be called again before the last one settles. */
  next(): Promise<IteratorResult<Batch, undefined>> {
    const result = this.#queue.then(() => this.#next());
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Ends the iteration (for-await calls this on break or throw) and the worker with it. */
  async return(): Promise<IteratorResult<Batch, undefined>> {
    await this.#close();
    return { done: true, value: undefined };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#close();
  }

  async #next(): Promise<IteratorResult<Batch, undefined>> {
    if (this.#closed || this.#consumed >= this.numBatches) {
      await this.#close();
      return { done: true, value: undefined };
    }
    if (this.#failure) {
      await this.#close();
      throw this.#failure;
    }
    this.#request();
    const k = this.#consumed;
    let item: Item | typeof closed | undefined = this.#ready.get(k);
    if (item === undefined) {
      const started = performance.now();
      item = await new Promise<Item | typeof closed>((resolve) => {
        this.#waiter = resolve;
      });
      this.#waitMs += performance.now() - started;
    }
    if (item === closed) return { done: true, value: undefined };
    this.#ready.delete(k);
    this.#consumed++;
    if (item instanceof Error) {
      await this.#close();
      throw item;
    }
    return { done: false, value: item };
  }

  /** Asks for every batch up to `prefetch` past the one about to be consumed. */
  #request(): void {
    const last = Math.min(this.numBatches - 1, this.#consumed + this.prefetch);
    if (this.#requested > last) return;
    const worker = this.#worker ?? this.#start();
    while (this.#requested <= last) worker.postMessage(this.#requested++);
    worker.ref(); // work is pending: keep the process alive until it arrives
  }

  #start(): Worker {
    const { pixels, labels, positions, channels, height, width, length } = this.#source;
    const worker = new Worker(workerScript(), {
      workerData: { pixels, labels, positions, channels, height, width, length, options: this.#options },
      execArgv: [], // plain JavaScript: no loader (tsx) or other flags of the parent needed
      name: 'libtorch-resnet batches',
    });
    worker.on('message', (reply: Reply) => this.#onReply(reply));
    worker.on('error', (error) => this.#fail(new ResNetError(`The batch worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#fail(new ResNetError(`The batch worker exited early with code ${code}`));
    });
    this.#worker = worker;
    return worker;
  }

  #onReply(reply: Reply): void {
    if (this.#closed) return; // a reply already on its way when the consumer stopped
    this.#received++;
    this.#buildMs += reply.buildMs ?? 0;
    let item: Item;
    if (reply.error !== undefined) {
      const cause = Object.assign(new Error(reply.error), { stack: reply.stack }); // the worker's own stack
      item = new ResNetError(`Building batch ${reply.index} failed in the batch worker: ${reply.error}`, { cause });
    } else {
      const { channels, height, width } = this.#source;
      const size = reply.size!;
      item = {
        images: new Tensor(new Float32Array(reply.images!), [size, channels, height, width]),
        labels: new Tensor(new BigInt64Array(reply.labels!), [size]),
        indices: new Int32Array(reply.indices!),
      };
    }
    if (this.#waiter !== null && reply.index === this.#consumed) this.#wake(item);
    else this.#ready.set(reply.index, item);
    if (this.#received === this.numBatches) void this.#stopWorker(); // nothing more to build
    else if (this.#received === this.#requested) this.#worker?.unref(); // idle: must not hold the process open
  }

  #wake(item: Item | typeof closed): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(item);
  }

  #fail(error: Error): void {
    if (this.#failure !== null || this.#closed) return;
    this.#failure = error;
    void this.#stopWorker();
    if (this.#waiter !== null) this.#wake(error);
  }

  async #stopWorker(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null; // before terminate(): its 'exit' is then not taken for a crash
    if (worker !== null) await worker.terminate();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#ready.clear();
    this.#wake(closed);
    await this.#stopWorker();
  }
}
