// preprocess() on worker threads, for servers: the event loop only posts the encoded bytes and
// receives the finished tensor, so no per-pixel work of any request delays the others (or
// /healthz). Each worker takes several images at once (sharp decodes on libuv's pool either way).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ResNetError } from '../errors.js';
import { Tensor } from '../tensor.js';
import * as v from '../validate.js';
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
}

// From the build, the compiled .js beside this file. From source (run with tsx), the .ts file,
// loaded through tsx's loader, which worker threads do not inherit.
const fromSource = import.meta.url.endsWith('.ts');
const workerFile = new URL(`./preprocess-worker${fromSource ? '.ts' : '.js'}`, import.meta.url);
const startWorker = () =>
  fromSource
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(workerFile.href)}); });`, { eval: true })
    : new Worker(workerFile);

export class PreprocessPool {
  readonly size: number;
  readonly #options: PreprocessOptions;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;

  /** `size` workers (default: the CPUs, at most 4), each preprocessing with `options`. */
  constructor(options: PreprocessOptions, size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.#options = checkPreprocessOptions(options);
    this.size = v.positiveInteger('size', size);
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const slot: Slot = { worker: startWorker(), pending: new Map() };
    // Idle workers must not keep a process alive that has nothing else to do.
    slot.worker.unref();
    slot.worker.on('message', (reply: PreprocessReply) => this.#settle(slot, reply));
    const fail = (error: Error) => {
      for (const p of slot.pending.values()) p.reject(error);
      slot.pending.clear();
      // Replace a worker that died, so that the pool keeps its size.
      if (!this.#closed) this.#slots[this.#slots.indexOf(slot)] = this.#spawn();
    };
    slot.worker.on('error', (error) => fail(new ResNetError(`An image worker failed: ${error.message}`, { cause: error })));
    slot.worker.on('exit', (code) => {
      if (!this.#closed) fail(new ResNetError(`An image worker exited (code ${code})`));
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
    // The least busy worker; a copy of the bytes is moved to it (a Buffer may be a view into a larger pool).
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.#nextId++;
    const copy = image.slice();
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { image, resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage({ id, image: copy, options: this.#options } satisfies PreprocessRequest, [copy.buffer as ArrayBuffer]);
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
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
