// preprocess() on worker threads, for servers: the event loop only posts the encoded bytes and
// receives the finished tensor, so no per-pixel work of any request delays the others (or
// /healthz). Each worker takes several images at once (sharp decodes on libuv's pool either way).
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { ResNetError } from '../errors.js';
import { Tensor } from '../tensor.js';
import * as v from '../validate.js';
import { startWorker, terminateAll } from '../worker-start.js';
import { ImageError } from './errors.js';
import { checkPreprocessOptions, type PreprocessOptions } from './preprocess-options.js';
import type { PreprocessReply, PreprocessRequest } from './preprocess-worker.js';

interface Pending {
  image: Uint8Array;
  resolve(tensor: Tensor<Float32Array>): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** The error it died of, if it did ('error' comes before 'exit'). */
  failure?: Error;
  /** It has answered at least once (a worker that cannot even start is not restarted forever). */
  answered?: boolean;
}

export class PreprocessPool {
  readonly size: number;
  readonly #options: PreprocessOptions;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;
  #startFailures = 0;

  /** `size` workers (default: the CPUs, at most 4), each preprocessing with `options`. */
  constructor(options: PreprocessOptions, size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.#options = checkPreprocessOptions(options);
    this.size = v.positiveInteger('size', size);
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const slot: Slot = { worker: startWorker('preprocess-worker', import.meta.url), pending: new Map() };
    // Idle workers must not keep a process alive that has nothing else to do.
    slot.worker.unref();
    slot.worker.on('message', (reply: PreprocessReply) => {
      slot.answered = true;
      this.#settle(slot, reply);
    });
    slot.worker.on('error', (error) => {
      slot.failure = new ResNetError(`An image worker failed: ${error.message}`, { cause: error });
    });
    // 'exit' comes once per worker, after any 'error': the one place that settles and replaces it.
    slot.worker.on('exit', (code) => {
      const error = slot.failure ?? new ResNetError(`An image worker exited (code ${code})`);
      for (const p of slot.pending.values()) p.reject(this.#closed ? new ResNetError('The preprocessing pool was closed') : error);
      slot.pending.clear();
      if (this.#closed) return;
      this.#startFailures = slot.answered ? 0 : this.#startFailures + 1;
      const at = this.#slots.indexOf(slot);
      // Keep the pool's size, unless workers keep dying before their first answer (a broken install).
      if (at >= 0 && this.#startFailures < 3) this.#slots[at] = this.#spawn();
      else if (at >= 0) this.#slots.splice(at, 1);
    });
    return slot;
  }

  #settle(slot: Slot, reply: PreprocessReply): void {
    const p = slot.pending.get(reply.id);
    if (!p) return;
    slot.pending.delete(reply.id);
    if (slot.pending.size === 0) slot.worker.unref();
    if ('error' in reply) {
      const { image, reason, message } = reply.error;
      p.reject(image ? new ImageError(p.image, reason) : new ResNetError(message));
    } else p.resolve(new Tensor(reply.data, reply.shape));
  }

  /** The tensor preprocess(image, options) gives, [1, 3, H, W]; rejects as it would. */
  run(image: Uint8Array): Promise<Tensor<Float32Array>> {
    if (this.#closed) return Promise.reject(new ResNetError('The preprocessing pool is closed'));
    if (!(image instanceof Uint8Array)) return Promise.reject(v.invalid('a Uint8Array', 'image', image));
    if (this.#slots.length === 0) return Promise.reject(new ResNetError('The image workers could not start (see the errors before this one)'));
    // The least busy worker. A copy of the bytes moves to it: the caller's Buffer may be a view
    // into Node's shared pool, which must be neither moved nor copied whole.
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.#nextId++;
    const copy = new Uint8Array(image);
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { image, resolve, reject });
      slot.worker.ref();
      try {
        slot.worker.postMessage({ id, image: copy, options: this.#options } satisfies PreprocessRequest, [copy.buffer]);
      } catch (error) {
        slot.pending.delete(id);
        if (slot.pending.size === 0) slot.worker.unref();
        reject(new ResNetError(`Cannot hand the image to a worker: ${(error as Error).message}`, { cause: error }));
      }
    });
  }

  /** Stops the workers; work still pending rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = new ResNetError('The preprocessing pool was closed');
    for (const slot of this.#slots) {
      for (const p of slot.pending.values()) p.reject(error);
      slot.pending.clear();
    }
    await terminateAll(this.#slots.map((s) => s.worker));
  }
}
