// ImageDataset: a labelled image set held in memory as uint8 N x C x H x W in a SharedArrayBuffer,
// so that batch workers read it in place. Subsets share that memory through an index map.
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { Tensor, formatShape } from '../tensor.js';
import * as v from '../validate.js';
import { BatchIterator } from './batch-iterator.js';
import { meanStd, resolveBatchOptions, type BatchOptions } from './batch-options.js';

export interface ImageDatasetInit {
  /** N * C * H * W bytes, channel-planar. Used in place if it is on a SharedArrayBuffer, else copied into one. */
  pixels: Uint8Array;
  /** [N, C, H, W] */
  shape: readonly number[];
  /** N labels in [0, classes.length). Used in place if an Int32Array on a SharedArrayBuffer. */
  labels: ArrayLike<number>;
  classes: readonly string[];
  /** Per-channel mean and std of pixel / 255 for normalisation. Default: computed from the pixels. */
  mean?: readonly number[];
  std?: readonly number[];
  /** Where each image came from (e.g. its file), kept for get(). */
  sources?: readonly string[];
}

export interface DatasetItem {
  /** [C, H, W] uint8, a copy */
  image: Tensor<Uint8Array>;
  label: number;
  source?: string;
}

/** Per-channel mean and (population) std of pixel / 255 over the whole set, from a byte histogram
 * (exact sums, one cheap pass). A constant channel gets std 1, so normalising never divides by 0. */
export function computeMeanStd(pixels: Uint8Array, shape: readonly [number, number, number, number]): { mean: number[]; std: number[] } {
  const [n, channels, h, w] = shape;
  const plane = h * w;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    const counts = new Float64Array(256);
    for (let i = 0; i < n; i++) {
      const start = (i * channels + c) * plane;
      for (let p = start; p < start + plane; p++) counts[pixels[p]!]!++;
    }
    const total = n * plane;
    let sum = 0;
    for (let b = 0; b < 256; b++) sum += counts[b]! * b;
    const m = total === 0 ? 0 : sum / total / 255;
    let squares = 0;
    for (let b = 0; b < 256; b++) squares += counts[b]! * (b / 255 - m) ** 2;
    const s = total === 0 ? 0 : Math.sqrt(squares / total);
    mean.push(m);
    std.push(s > 0 ? s : 1);
  }
  return { mean, std };
}

const internal = Symbol('ImageDataset.internal');

export class ImageDataset {
  readonly classes: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** [C, H, W] of every image */
  readonly imageShape: readonly [number, number, number];
  #pixels: Uint8Array;
  #labels: Int32Array;
  #positions: Int32Array | null;
  #sources: readonly string[] | undefined;

  constructor(init: ImageDatasetInit) {
    const o = v.plainObject('init', init);
    v.knownKeys('ImageDataset', o, ['pixels', 'shape', 'labels', 'classes', 'mean', 'std', 'sources']);
    const shape = init.shape;
    if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d, i) => Number.isSafeInteger(d) && d >= (i === 0 ? 0 : 1))) {
      throw v.invalid('[N, C, H, W] with N >= 0 and C, H, W >= 1', 'shape', shape);
    }
    const [n, c, h, w] = shape as [number, number, number, number];
    if (!(init.pixels instanceof Uint8Array)) throw v.invalid('a Uint8Array', 'pixels', init.pixels);
    if (init.pixels.length !== n * c * h * w) {
      throw new ShapeError(`Expected ${n * c * h * w} pixel bytes for shape ${formatShape(shape)} but received ${init.pixels.length}`);
    }
    if (!Array.isArray(init.classes) || !init.classes.every((x) => typeof x === 'string')) {
      throw v.invalid('an array of class names', 'classes', init.classes);
    }
    const labels = init.labels;
    if (labels?.length !== n) throw v.invalid(`${n} labels`, 'labels', labels);
    for (let i = 0; i < n; i++) {
      const label = labels[i]!;
      if (!Number.isInteger(label) || label < 0 || label >= init.classes.length) {
        throw new InvalidArgumentError(`Expected labels in [0, ${init.classes.length}) but label ${i} is ${label}`);
      }
    }
    if (init.sources !== undefined && (!Array.isArray(init.sources) || init.sources.length !== n)) {
      throw v.invalid(`${n} sources`, 'sources', init.sources);
    }
    this.#pixels = init.pixels.buffer instanceof SharedArrayBuffer ? init.pixels : shared(init.pixels, Uint8Array);
    this.#labels =
      labels instanceof Int32Array && labels.buffer instanceof SharedArrayBuffer ? labels : shared(Int32Array.from(labels), Int32Array);
    const stats = init.mean === undefined && init.std === undefined ? computeMeanStd(this.#pixels, [n, c, h, w]) : meanStd('init', init.mean, init.std, c);
    this.classes = Object.freeze([...init.classes]);
    this.mean = Object.freeze(stats.mean);
    this.std = Object.freeze(stats.std);
    this.imageShape = Object.freeze([c, h, w]) as readonly [number, number, number];
    this.#sources = init.sources === undefined || Object.isFrozen(init.sources) ? init.sources : Object.freeze([...init.sources]);
    this.#positions = (init as { [internal]?: Int32Array })[internal] ?? null;
  }

  get length(): number {
    return this.#positions?.length ?? this.#labels.length;
  }

  /** { 'T-shirt/top': 0, ... }: torchvision's class_to_idx */
  get classToIdx(): Record<string, number> {
    return Object.fromEntries(this.classes.map((name, i) => [name, i]));
  }

  #base(i: number): number {
    return this.#positions === null ? i : this.#positions[i]!;
  }

  #index(name: string, i: unknown): number {
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0 || i >= this.length) {
      throw v.invalid(`integer in [0, ${this.length})`, name, i);
    }
    return i;
  }

  get(index: number): DatasetItem {
    const base = this.#base(this.#index('index', index));
    const size = this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    const image = new Tensor(this.#pixels.slice(base * size, (base + 1) * size), this.imageShape);
    const item: DatasetItem = { image, label: this.#labels[base]! };
    const source = this.#sources?.[base];
    if (source !== undefined) item.source = source;
    return item;
  }

  /** Every label, in dataset order (a copy). */
  labels(): Int32Array {
    const out = new Int32Array(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.#labels[this.#base(i)]!;
    return out;
  }

  /** The images at `indices` (of this dataset), in that order; repeats allowed. Shares the memory. */
  subset(indices: Iterable<number> | ArrayLike<number>): ImageDataset {
    const list = Array.from(indices as Iterable<number>);
    const positions = new Int32Array(list.length);
    list.forEach((i, k) => (positions[k] = this.#base(this.#index(`indices[${k}]`, i))));
    const [c, h, w] = this.imageShape;
    return new ImageDataset({
      pixels: this.#pixels,
      shape: [this.#labels.length, c, h, w],
      labels: this.#labels,
      classes: this.classes,
      mean: this.mean,
      std: this.std,
      ...(this.#sources === undefined ? {} : { sources: this.#sources }),
      [internal]: positions,
    } as ImageDatasetInit);
  }

  /**
   * Batches for one epoch, built by a worker thread: `for await (const { images, labels } of
   * dataset.batches({ batchSize: 128, shuffle: true, seed, epoch }))`. Breaking out of the loop
   * ends the worker. `indices` (e.g. a DistributedSampler's) or `shard` choose what this process
   * visits in data-parallel training.
   */
  batches(options: BatchOptions): BatchIterator {
    const [channels, height, width] = this.imageShape;
    const resolved = resolveBatchOptions(options, { channels, mean: this.mean, std: this.std, length: this.length });
    return new BatchIterator(
      { pixels: this.#pixels, labels: this.#labels, positions: this.#positions, channels, height, width, length: this.length },
      resolved,
    );
  }
}

function shared<T extends Uint8Array | Int32Array>(data: T, Type: { new (buffer: SharedArrayBuffer): T }): T {
  const out = new Type(new SharedArrayBuffer(data.byteLength));
  out.set(data);
  return out;
}
