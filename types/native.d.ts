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
  evaluate(images: NativeTensorIn, labels: NativeTensorIn): Promise<NativeEvalResult>;
  dispose(): void;
  numParameters(): number;
  readonly device: string;
  readonly disposed: boolean;
}

export interface NativeBinding {
  createModel(spec: NativeSpec, device: string, seed: number): Promise<NativeModel>;
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
}
