// The ResNet model as users hold it: a thin, validating facade over one NativeModel.
import { DisposedError, settle } from './errors.js';
import { native, type NativeModel, type NativeTensorOut } from './native.js';
import type { ResNetConfig } from './options.js';
import { formatShape, nativeView, numelOf, Tensor, type DType, type TensorLike } from './tensor.js';
import { InvalidArgumentError, ShapeError } from './errors.js';
import * as v from './validate.js';
import { formatFor, readWeightsFile, type LoadWeightsOptions, type SaveWeightsOptions } from './weights/files.js';
import { readModelMetadata, saveDescribed, structureOf, type ModelMetadata } from './weights/model-metadata.js';
import { checkPreprocessOptions, fromTransforms, type PreprocessOptions } from './image/preprocess-options.js';
import { imagenetCategories } from './weights/registry.js';
import type { ProgressOption } from './weights/progress.js';
import type { WeightsEntry } from './weights/registry.js';
import { trainingPort, type TrainingPort } from './train/port.js';
import { FeatureMap, featureLayout, nativeSpec } from './features.js';
import type { ClassifyOptions, Prediction } from './classify.js';
import type { ImageInput } from './image/preprocess.js';
import { Trainer, type TrainerOptions } from './train/trainer.js';

export interface LoadStateDictOptions {
  /** Require the keys to match exactly (PyTorch's default). Size mismatches always fail. */
  strict?: boolean;
  /**
   * Name prefixes left out on both sides ('fc' covers 'fc.weight' and 'fc.bias'): not loaded, not
   * missing, not unexpected. For fine-tuning from a checkpoint with another head.
   */
  exclude?: string[];
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDict = Record<string, Tensor>;

/** See ResNet.setInferenceEngine. */
export type InferenceEngineChoice = 'auto' | 'onednn' | 'torchscript' | 'none';
const INFERENCE_ENGINES = ['auto', 'onednn', 'torchscript', 'none'] as const;

/**
 * The engine new models start with: LIBTORCH_RESNET_ENGINE when set (to run a whole program, or
 * the test suite, on the TorchScript engine or the plain modules), else 'auto'.
 */
function engineFromEnvironment(): InferenceEngineChoice {
  const value = process.env.LIBTORCH_RESNET_ENGINE;
  if (value === undefined || value === '') return 'auto';
  return v.oneOf('the environment variable LIBTORCH_RESNET_ENGINE', value, INFERENCE_ENGINES);
}
export interface InferenceEngineOptions {
  /** oneDNN engine: Winograd's algorithm for 3x3 stride-1 convolutions where available (default true). */
  winograd?: boolean;
  /**
   * oneDNN engine: the most memory a forward's activations may take, in bytes. A bigger batch is
   * refused with an InvalidArgumentError that says to split it, instead of being allocated (or,
   * with 'auto', handed to an engine that allocates more). Default: half the physical memory.
   */
  maxActivationBytes?: number;
}

export interface LoadOptions extends LoadStateDictOptions, LoadWeightsOptions {
  /** For a URL: progress callback, or true for a bar on stderr (when it is a terminal). */
  progress?: ProgressOption;
  /** For a URL: download folder. Default: torch.hub's ($TORCH_HOME/hub/checkpoints). */
  cacheDir?: string;
  /** For a URL: fail when no bytes arrive for this long. */
  timeoutMs?: number;
  /** For a URL: aborts the download (a DownloadError whose cause is the signal's reason). */
  signal?: AbortSignal;
}

const loadOptionNames = ['strict', 'exclude', 'key', 'stripPrefix', 'progress', 'cacheDir', 'timeoutMs', 'signal'];
const isUrl = (s: string) => /^https?:\/\//i.test(s);

function toTensor(out: NativeTensorOut): Tensor {
  return Tensor.fromBuffer(out.buffer, out.shape, out.dtype as DType);
}

export class ResNet implements Disposable {
  readonly arch: string;
  readonly config: Readonly<ResNetConfig>;
  /** The pretrained weights the model was built with (categories, preprocessing), or null. */
  readonly weights: WeightsEntry | null;
  readonly #native: NativeModel;
  #training = false;
  #classes: readonly string[] | null = null;
  #preprocessing: Readonly<PreprocessOptions> | null = null;

  /** @internal Use the builders (resnet50(), createResNet(), ...). */
  constructor(nativeModel: NativeModel, config: ResNetConfig, weights: WeightsEntry | null = null) {
    this.#native = nativeModel;
    this.arch = config.arch;
    this.config = Object.freeze({ ...config });
    this.weights = weights;
  }

  /** @internal Builds the network off the main thread. */
  static async create(config: ResNetConfig, weights: WeightsEntry | null = null): Promise<ResNet> {
    const trace = new Error();
    const engine = engineFromEnvironment();
    const nativeModel = await settle(() => native.createModel(nativeSpec(config), config.device, config.seed), trace);
    try {
      if (config.precision !== 'float32' || config.memoryFormat !== 'contiguous') {
        await settle(() => nativeModel.setExecution(config.precision, config.memoryFormat === 'channels_last'), trace);
      }
      if (engine !== 'auto') await settle(() => nativeModel.setInferenceEngine(engine, { winograd: true }), trace);
    } catch (error) {
      nativeModel.dispose();
      throw error;
    }
    return new ResNet(nativeModel, config, weights);
  }

  /**
   * Class names by label, used by classify(), `resnet predict` and the server: set by setClasses()
   * (resnet train sets the data set's), restored by load() from a file model.save() wrote, or the
   * pretrained weights' categories (ImageNet). null when nothing says.
   */
  get classes(): readonly string[] | null {
    return this.#classes ?? (this.weights ? imagenetCategories() : null);
  }

  /**
   * preprocess() options that make this model's input from an image: set by setPreprocessing()
   * (resnet train sets the data set's size, resize rule and mean/std), restored by load(), or the
   * pretrained weights' transforms. null when nothing says (classify() then uses ImageNet's).
   */
  get preprocessing(): Readonly<PreprocessOptions> | null {
    return this.#preprocessing ?? (this.weights ? fromTransforms(this.weights.transforms) : null);
  }

  /** Names the classes (one per output, in label order); saved with the weights by save(). */
  setClasses(classes: readonly string[] | null): this {
    if (classes === null) {
      this.#classes = null;
      return this;
    }
    const n = this.config.numClasses;
    if (!Array.isArray(classes) || classes.length !== n || !classes.every((c) => typeof c === 'string')) {
      throw v.invalid(`an array of ${n} class names (one per output of the model)`, 'classes', classes);
    }
    this.#classes = Object.freeze([...classes]);
    return this;
  }

  /** Says how images become this model's input (preprocess() options); saved by save(). */
  setPreprocessing(options: PreprocessOptions | null): this {
    if (options === null) {
      this.#preprocessing = null;
      return this;
    }
    if (this.config.inChannels !== 3) {
      throw new InvalidArgumentError(`Expected a model with 3 input channels for preprocessing (it makes RGB images) but this model takes ${this.config.inChannels}`);
    }
    this.#preprocessing = Object.freeze(checkPreprocessOptions(options));
    return this;
  }

  /** @internal What save() writes next to the tensors. */
  describe(): ModelMetadata {
    const classes = this.classes;
    const preprocessing = this.preprocessing;
    return {
      arch: this.arch,
      structure: structureOf(this.config),
      ...(classes !== null && { classes: [...classes] }),
      ...(preprocessing !== null && { preprocess: structuredClone(preprocessing) as PreprocessOptions }),
    };
  }

  /** @internal Takes the classes (when the head came from the same file) and preprocessing of a loaded description. */
  adopt(description: ModelMetadata, headLoaded = true): void {
    if (headLoaded && description.classes?.length === this.config.numClasses) this.#classes = Object.freeze([...description.classes]);
    if (description.preprocess !== undefined && this.config.inChannels === 3) this.#preprocessing = Object.freeze(description.preprocess);
  }

  /** Where the weights live: 'cpu' or 'cuda:N'. */
  get device(): string {
    return this.#native.device;
  }

  /** True after train(), false after eval() (the default). */
  get training(): boolean {
    return this.#training;
  }

  get disposed(): boolean {
    return this.#native.disposed;
  }

  /** Number of parameters, counted as torchvision counts them (buffers excluded). */
  numParameters(): number {
    return this.#native.numParameters();
  }

  /**
   * Logits for a float32 batch [N, inChannels, H, W]. In eval mode BatchNorm uses its running
   * statistics; in train mode it uses the batch's and updates the running statistics.
   */
  async forward(input: Tensor | TensorLike): Promise<Tensor<Float32Array>> {
    const trace = new Error();
    const x = this.#checkInput(input);
    return (await this.#call(() => this.#native.forward(x), trace, toTensor)) as Tensor<Float32Array>;
  }

  /**
   * Top-k classes of each image (a path or the bytes of a JPEG, PNG, WebP, GIF, TIFF or AVIF),
   * preprocessed as `model.preprocessing` says (pretrained weights: their recipe, resize 232 or
   * 256, centre crop 224, mean/std; a trained model: its data set's), softmax scores, and labels
   * from `model.classes`. Returns one list per image.
   */
  async classify(images: readonly ImageInput[] | ImageInput, options: ClassifyOptions = {}): Promise<Prediction[][]> {
    // Imported here, not at the top: code that reaches lib/model.ts without the package index (the
    // CLI commands and runDegradation, through lib/builders.ts) loads sharp only when it classifies.
    // The index loads it anyway.
    const { imagesToBatch, resolveClassify, topPredictions } = await import('./classify.js');
    const { topk, labels, preprocess } = resolveClassify(this, options);
    const { batch } = await imagesToBatch(images, preprocess);
    return topPredictions(await this.forward(batch), topk, labels);
  }

  /**
   * Intermediate feature maps for detection and retrieval backbones: 'stem', 'layer1' ...
   * 'layer4' ('layer3' for the CIFAR nets), and 'pool' (the [N, C] global-average-pooled
   * embedding). Each comes back with its stride and channel count. Work stops at the deepest map
   * asked for.
   */
  async features(input: Tensor | TensorLike, options: { layers?: string[] } = {}): Promise<Record<string, FeatureMap>> {
    const trace = new Error();
    v.knownKeys('features', v.plainObject('options', options), ['layers']);
    const layout = featureLayout(this.config);
    const names = options.layers ?? layout.filter((l) => l.name.startsWith('layer')).map((l) => l.name);
    const known = layout.map((l) => l.name);
    if (!Array.isArray(names) || names.length === 0) throw v.invalid(`a non-empty array of ${known.join(', ')}`, 'layers', names);
    names.forEach((name, i) => v.oneOf(`layers[${i}]`, name, known));
    const x = this.#checkInput(input);
    return this.#call(() => this.#native.features(x, [...new Set(names)]), trace, (maps) => {
      const out: Record<string, FeatureMap> = {};
      for (const map of maps) {
        const info = layout.find((l) => l.name === map.name)!;
        out[map.name] = new FeatureMap(new Float32Array(map.buffer), map.shape, info.stride, info.channels);
      }
      return out;
    });
  }

  /**
   * Which inference engine eval-mode forward() runs through (bfloat16 models: 'onednn' and 'auto'
   * run oneDNN in bfloat16 where the CPU has it, the others autocast); each is built from the current
   * weights on first use and rebuilt after any change of weights, mode or device, and gives the
   * plain modules' numbers within 1e-4 relative.
   * - `'auto'` / `true` (default): `'onednn'` on the CPU when this build has it, else `'torchscript'`.
   * - `'onednn'`: the network as oneDNN primitives (BatchNorm folded, weights packed once, ReLU and
   *   residual add fused into the convolutions, activation buffers planned once per input shape).
   *   CPU only; a `DeviceError` where it is not built in or the model is on a GPU (a model moved
   *   to a GPU later runs as with `'auto'`). Under `'auto'`, a model oneDNN cannot plan falls back
   *   to the next engine with a warning on stderr.
   * - `'torchscript'`: the network as TorchScript, frozen and optimized by LibTorch's
   *   optimize_for_inference (contiguous memory format only).
   * - `'none'` / `false`: the plain modules.
   *
   * `options.winograd` (oneDNN engine, default true): 3x3 stride-1 convolutions by Winograd's
   * algorithm where oneDNN has kernels for it (AVX-512 CPUs): about 16% less time for a resnet50
   * batch of 8, 37% for resnet18; `false` keeps every convolution on the direct algorithm, as
   * PyTorch computes it.
   */
  async setInferenceEngine(engine: InferenceEngineChoice | boolean, options: InferenceEngineOptions = {}): Promise<this> {
    const trace = new Error();
    const choice: InferenceEngineChoice =
      engine === true ? 'auto' : engine === false ? 'none' : v.oneOf('engine', engine, INFERENCE_ENGINES);
    v.knownKeys('options', v.plainObject('options', options), ['winograd', 'maxActivationBytes']);
    const winograd = options.winograd === undefined ? true : v.boolean('options.winograd', options.winograd);
    const limit = options.maxActivationBytes === undefined ? undefined : v.positiveInteger('options.maxActivationBytes', options.maxActivationBytes);
    await this.#call(() => this.#native.setInferenceEngine(choice, { winograd, ...(limit !== undefined && { maxActivationBytes: limit }) }), trace, () => undefined);
    return this;
  }

  /** The engine eval-mode forward() uses under the current settings and precision ('none': plain modules). */
  async inferenceEngine(): Promise<'onednn' | 'torchscript' | 'none'> {
    const trace = new Error();
    return this.#call(() => this.#native.inferenceEngine(), trace, (kind) => kind);
  }

  /** BatchNorm uses running statistics (the state after creation). */
  async eval(): Promise<this> {
    return this.train(false);
  }

  /** BatchNorm uses batch statistics and updates its running statistics. */
  async train(mode = true): Promise<this> {
    const trace = new Error();
    v.boolean('mode', mode);
    await this.#call(() => this.#native.setTraining(mode), trace, () => undefined);
    this.#training = mode;
    return this;
  }

  /** A copy of every parameter and buffer, under torchvision's state_dict names. */
  async stateDict(): Promise<StateDict> {
    const trace = new Error();
    return this.#call(() => this.#native.stateDict(), trace, (entries) => {
      const out: StateDict = {};
      for (const entry of entries) out[entry.name] = toTensor(entry);
      return out;
    });
  }

  /**
   * Copies `stateDict` into the model. Everything is checked before anything is copied, so a
   * failed load leaves the model as it was. Errors use PyTorch's wording.
   */
  async loadStateDict(stateDict: Record<string, Tensor | TensorLike>, options: LoadStateDictOptions = {}): Promise<LoadStateDictResult> {
    const trace = new Error();
    v.plainObject('stateDict', stateDict);
    v.knownKeys('loadStateDict', v.plainObject('options', options) as Record<string, unknown>, ['strict', 'exclude']);
    const strict = v.boolean('strict', options.strict ?? true);
    const exclude = options.exclude ?? [];
    if (!Array.isArray(exclude) || !exclude.every((p) => typeof p === 'string' && p !== '')) {
      throw v.invalid('an array of key prefixes', 'exclude', options.exclude);
    }
    const entries = Object.entries(stateDict).map(([name, value]) => {
      const t = Tensor.from(value);
      return { name, dtype: t.dtype, shape: [...t.shape], data: nativeView(t.data) };
    });
    return this.#call(() => this.#native.loadStateDict(entries, strict, exclude), trace, (r) => r);
  }

  /**
   * Loads a weights file (.pth written by torch.save, or .safetensors) or a URL (downloaded once
   * into torch.hub's cache, SHA-256 prefix checked) into the model, strict by default.
   */
  async load(source: string, options: LoadOptions = {}): Promise<LoadStateDictResult> {
    if (typeof source !== 'string' || source === '') throw v.invalid('a file path or URL', 'source', source);
    v.knownKeys('load', v.plainObject('options', options), loadOptionNames);
    const { strict, exclude, key, stripPrefix, progress, cacheDir, timeoutMs, signal } = options;
    let path = source;
    if (isUrl(source)) {
      // Imported here, not at the top, for the same reason as classify's: the index loads them anyway.
      const [{ downloadWeights }, { progressReporter }] = await Promise.all([import('./weights/download.js'), import('./weights/progress.js')]);
      const reporter = progressReporter(progress, `Downloading ${source.split('/').pop()}`);
      try {
        path = await downloadWeights(source, {
          ...(cacheDir !== undefined && { cacheDir }),
          ...(timeoutMs !== undefined && { timeoutMs }),
          ...(signal !== undefined && { signal }),
          ...(reporter.onProgress && { progress: reporter.onProgress }),
        });
      } finally {
        reporter.done();
      }
    }
    const file = await readWeightsFile(path, { ...(key !== undefined && { key }), ...(stripPrefix !== undefined && { stripPrefix }) });
    // Read before anything changes: a damaged description fails the load, model untouched.
    const description = await readModelMetadata(path, file.metadata);
    const result = await this.loadStateDict(file.tensors, { ...(strict !== undefined && { strict }), ...(exclude !== undefined && { exclude }) });
    // The class names belong to the head they were trained with: not to a fresh one.
    const headLoaded = !(exclude ?? []).some((prefix) => 'fc.weight'.startsWith(prefix)) && !result.missingKeys.includes('fc.weight');
    if (description) this.adopt(description, headLoaded);
    return result;
  }

  /**
   * Saves the weights (.safetensors, or a .pth that torch.load(weights_only=True) accepts) with
   * the model's description: architecture, classes, preprocessing. It goes into a safetensors
   * file's metadata, or next to a .pth file as `<file>.json`. load() and loadModel() read it back.
   */
  async save(path: string, options: SaveWeightsOptions = {}): Promise<void> {
    v.knownKeys('save', v.plainObject('options', options), ['format', 'metadata']);
    const format = formatFor(path, options.format);
    if (options.metadata !== undefined) v.plainObject('metadata', options.metadata);
    await saveDescribed(path, format, await this.stateDict(), this.describe(), format === 'safetensors' ? { arch: this.arch, ...options.metadata } : options.metadata);
  }

  /**
   * A trainer: optimizer, loss, schedule. Creating one replaces the optimizer state of any earlier
   * trainer of this model. See lib/train/trainer.ts.
   */
  trainer(options: TrainerOptions): Trainer {
    return new Trainer(this[trainingPort](), options);
  }

  /** @internal The native calls training needs (see lib/train/port.ts). */
  [trainingPort](): TrainingPort {
    const entries = (sd: Record<string, Tensor>) =>
      Object.entries(sd).map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape], data: nativeView(t.data) }));
    const plain = (t: Tensor) => ({ dtype: t.dtype, shape: [...t.shape], data: nativeView(t.data) });
    return {
      numClasses: this.config.numClasses,
      stages: this.config.widths.map((_, i) => `layer${i + 1}`),
      configure: (options) => this.#call(() => this.#native.configureTraining(options), new Error(), () => undefined),
      step: (images, labels, lr, accumulate) => {
        const trace = new Error();
        const x = this.#checkInput(images);
        return this.#call(() => this.#native.trainStep(x, plain(labels), lr, accumulate), trace, (r) => r);
      },
      syncBuffers: () => this.#call(() => this.#native.syncBuffers(), new Error(), () => undefined),
      evaluate: (images, labels, flipAverage = false) => {
        const trace = new Error();
        const x = this.#checkInput(images);
        return this.#call(() => this.#native.evaluate(x, plain(labels), flipAverage), trace, (r) => r);
      },
      optimizerState: () =>
        this.#call(() => this.#native.optimizerState(), new Error(), (list) => Object.fromEntries(list.map((e) => [e.name, toTensor(e)]))),
      loadOptimizerState: (state) => this.#call(() => this.#native.loadOptimizerState(entries(state)), new Error(), () => undefined),
    };
  }

  /** Moves the weights to another device. */
  async to(device: string): Promise<this> {
    const trace = new Error();
    const target = v.device('device', device);
    await this.#call(() => this.#native.to(target), trace, () => undefined);
    return this;
  }

  /**
   * Frees the native memory now. A call already running finishes; queued calls and any later
   * call reject with DisposedError. Safe to call twice.
   */
  dispose(): void {
    this.#native.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkInput(input: Tensor | TensorLike): { dtype: string; shape: number[]; data: ArrayBufferView } {
    const x = Tensor.from(input);
    if (x.dtype !== 'float32') {
      throw new InvalidArgumentError(`Expected a float32 tensor for input but received a ${x.dtype} tensor`);
    }
    const { inChannels } = this.config;
    const [n, c, h, w] = x.shape;
    if (x.ndim !== 4 || c !== inChannels || n === 0 || h === 0 || w === 0) {
      throw new ShapeError(
        `Expected shape [N, ${inChannels}, H, W] with N, H, W >= 1 for input but received ${formatShape(x.shape)}`,
      );
    }
    if (numelOf(x.shape) !== x.data.length) {
      throw new ShapeError(`Expected ${numelOf(x.shape)} elements for input but received ${x.data.length}`);
    }
    return { dtype: x.dtype, shape: [...x.shape], data: nativeView(x.data) };
  }

  async #call<R, T>(call: () => Promise<R>, trace: Error, finish: (raw: R) => T): Promise<T> {
    if (this.#native.disposed) {
      const error = new DisposedError('The model has been disposed');
      error.stack = `DisposedError: ${error.message}\n${trace.stack?.split('\n').slice(1).join('\n') ?? ''}`;
      throw error;
    }
    return finish(await settle(call, trace));
  }
}
