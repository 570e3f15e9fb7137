// Hand-written declaration of the native addon's surface (native/binding). lib/native.ts is the
// only module that loads the .node file; everything else goes through this typed interface.

/** A tensor as the addon reads it: lib/ has already checked dtype, shape and byte length. */
export interface NativeTensorIn {
  dtype: string;
  shape: number[];
  data: ArrayBufferView;
}

/** A tensor as the addon returns it: `buffer` owns native memory (no copy was made). */
export interface NativeTensorOut {
  dtype: string;
  shape: number[];
  buffer: ArrayBuffer;
}

export interface NativeSpec {
  block: 'basic' | 'bottleneck';
  /** 'imagenet': 7x7/2 conv + max pool; 'cifar': one 3x3 conv (the paper's section 4.2). */
  stem: 'imagenet' | 'cifar';
  /** 'B': 1x1 projection when the shape changes (torchvision); 'A': zero-padded identity; 'none': plain net. */
  shortcut: 'A' | 'B' | 'none';
  /** Planes of each stage: [64, 128, 256, 512] for ImageNet nets, [16, 32, 64] for the CIFAR ones. */
  widths: number[];
  layers: number[];
  numClasses: number;
  zeroInitResidual: boolean;
  groups: number;
  widthPerGroup: number;
  replaceStrideWithDilation: boolean[];
  inChannels: number;
}

/**
 * One layer of the network's description (native/core/network.h), in execution order. `name`: the
 * state-dict prefix for conv, bn and fc ('layer2.0.downsample.0'); torchvision's module path for the
 * others ('relu', 'layer1.0.relu', 'maxpool', 'avgpool'; 'layer1.0.add'). Values: 'x' the running
 * value, 'out' a block's residual branch, 'identity' its projected shortcut.
 */
export interface NativeLayer {
  kind: 'conv' | 'bn' | 'relu' | 'maxpool' | 'add' | 'avgpool' | 'fc';
  name: string;
  input: 'x' | 'out' | 'identity';
  output: 'x' | 'out' | 'identity';
  inChannels: number;
  outChannels: number;
  /** conv and maxpool; add with zeroPad: the subsampling stride. */
  kernel?: number;
  stride?: number;
  padding?: number;
  /** conv only. */
  dilation?: number;
  groups?: number;
  /** add only: option A's shortcut (input subsampled by `stride`, `padFront` zero channels before it). */
  zeroPad?: boolean;
  padFront?: number;
}

/** The network a spec describes: its layers, and which of them each residual block and each feature stage spans ([first, end)). */
export interface NativeNetworkDescription {
  layers: NativeLayer[];
  blocks: Array<{ name: string; first: number; end: number; inChannels: number; outChannels: number; stride: number; dilation: number }>;
  /** 'stem', 'layer1' ... 'layerN', 'pool': output stride (input pixels per position) and channels. */
  stages: Array<{ name: string; first: number; end: number; stride: number; channels: number }>;
}

export interface NativeTrainOptions {
  optimizer: {
    type: 'sgd' | 'adamw';
    momentum?: number;
    dampening?: number;
    nesterov?: boolean;
    weightDecay?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    excludeNormAndBiasFromWeightDecay?: boolean;
  };
  labelSmoothing?: number;
  classWeights?: number[];
  clipGradNorm?: number;
  /** Parameter name prefixes that are frozen ('layer1' freezes 'layer1.0.conv1.weight', ...). */
  freeze?: string[];
  freezeBatchNorm?: boolean;
  /** Data-parallel training over this group (DistributedDataParallel's defaults). */
  processGroup?: NativeProcessGroup;
  broadcastBuffers?: boolean;
  bucketCapBytes?: number;
}

export interface NativeProcessGroupOptions {
  backend: 'gloo' | 'nccl';
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
}

/** A c10d process group and its executor thread; collectives resolve once every rank took part. */
export interface NativeProcessGroup {
  allReduceSum(values: Float64Array): Promise<Float64Array>;
  barrier(): Promise<void>;
  destroy(): Promise<void>;
}

export interface NativeStepResult {
  loss: number;
  correct: number;
  count: number;
  gradNorm: number;
}

export interface NativeEvalResult {
  lossSum: number;
  top1: number;
  top5: number;
  count: number;
}

/** One model and its executor thread. Every method that touches LibTorch returns a Promise. */
export interface NativeModel {
  forward(input: NativeTensorIn): Promise<NativeTensorOut>;
  /** Maps by name ('stem', 'layer1'.., 'pool'), in the order asked for. */
  features(input: NativeTensorIn, names: string[]): Promise<Array<NativeTensorOut & { name: string }>>;
  setTraining(training: boolean): Promise<void>;
  /** Which engine eval-mode forward uses ('auto' is the default; 'none': the plain modules). */
  setInferenceEngine(engine: 'auto' | 'onednn' | 'torchscript' | 'none', options?: { winograd?: boolean; maxActivationBytes?: number }): Promise<void>;
  /** The engine eval-mode forward uses under the current settings. */
  inferenceEngine(): Promise<'onednn' | 'torchscript' | 'none'>;
  /** Autocast precision and memory layout of forwards and training steps. */
  setExecution(precision: 'float32' | 'bfloat16' | 'float16', channelsLast: boolean): Promise<void>;
  stateDict(): Promise<Array<NativeTensorOut & { name: string }>>;
  loadStateDict(
    entries: Array<NativeTensorIn & { name: string }>,
    strict: boolean,
    exclude?: string[],
  ): Promise<{ missingKeys: string[]; unexpectedKeys: string[] }>;
  to(device: string): Promise<string>;
  configureTraining(options: NativeTrainOptions): Promise<void>;
  /** accumulate: forward and backward only, gradients kept for the next step (DDP's no_sync). */
  trainStep(images: NativeTensorIn, labels: NativeTensorIn, lr: number, accumulate?: boolean): Promise<NativeStepResult>;
  /** Data-parallel training: rank 0's buffers to every rank (collective); otherwise nothing. */
  syncBuffers(): Promise<void>;
  optimizerState(): Promise<Array<NativeTensorOut & { name: string }>>;
  loadOptimizerState(entries: Array<NativeTensorIn & { name: string }>): Promise<void>;
  /** flipAverage: average the softmax of the images and of their mirror images (test-time augmentation). */
  evaluate(images: NativeTensorIn, labels: NativeTensorIn, flipAverage?: boolean): Promise<NativeEvalResult>;
  dispose(): void;
  numParameters(): number;
  readonly device: string;
  readonly disposed: boolean;
}

/** A JPEG's header: the upright size (after the EXIF orientation), and whether decodeJpeg takes it. */
export interface NativeJpegInfo {
  width: number;
  height: number;
  /** EXIF orientation, 1-8. */
  orientation: number;
  components: number;
  /** 8-bit grayscale, YCbCr or RGB (CMYK and YCCK are not). */
  decodable: boolean;
}

/**
 * What decodeJpeg computes from the upright image: the box [top, left, height, width] is cropped,
 * resized to `resize` [height, width] with Pillow's filter, and the window [top, left, height,
 * width] of the result is normalised through `tables` (3 x 256 floats), mirrored when `flip`.
 */
export interface NativeJpegTransform {
  box: [number, number, number, number];
  resize: [number, number];
  window: [number, number, number, number];
  filter: 'bilinear' | 'bicubic' | 'lanczos';
  flip: boolean;
  tables: Float32Array;
}

export interface NativeBinding {
  createModel(spec: NativeSpec, device: string, seed: number): Promise<NativeModel>;
  /** The network `spec` describes, layer by layer (synchronous). Throws for a spec that describes none. */
  describeNetwork(spec: NativeSpec): NativeNetworkDescription;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaCompiled(): boolean;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  libtorchVersion(): string;
  parallelInfo(): string;
  /** What the addon did to malloc at load (runtime::tune_allocator). */
  allocatorTuning(): string;
  /** True when the addon was built with oneDNN's headers (the 'onednn' inference engine). */
  onednnEngineCompiled(): boolean;
  cpuBfloat16Available(): boolean;
  /** Resolves once every rank joined (rendezvous through rank 0's TCPStore). */
  createProcessGroup(options: NativeProcessGroupOptions): Promise<NativeProcessGroup>;
  /** The process group backends this build has. */
  distributedBackends(): Array<'gloo' | 'nccl'>;
  /** True when the addon was built with libjpeg-turbo (the streaming data sets' JPEG fast path). */
  jpegDecoderCompiled(): boolean;
  /** A JPEG's header, or null when the bytes do not start as a JPEG; throws for a broken header. */
  jpegInfo(bytes: Uint8Array): NativeJpegInfo | null;
  /**
   * Decodes (libjpeg-turbo, EXIF orientation applied), crops, resizes (Pillow's arithmetic),
   * mirrors and normalises into out[offset ...] (3 x window height x window width floats), on the
   * calling thread. Throws an Error with a code for a corrupt or truncated JPEG.
   */
  decodeJpeg(bytes: Uint8Array, transform: NativeJpegTransform, out: Float32Array, offset: number): void;
  /**
   * A copy of `src` in an ordinary ArrayBuffer whose memory, once the copy is garbage-collected,
   * is kept for the next copy of the same size (already mapped: no page faults).
   */
  copyToPooled(src: Float32Array): Float32Array;
}
