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
  layers: number[];
  numClasses: number;
  zeroInitResidual: boolean;
  groups: number;
  widthPerGroup: number;
  replaceStrideWithDilation: boolean[];
  inChannels: number;
}

/** One model and its executor thread. Every method that touches LibTorch returns a Promise. */
export interface NativeModel {
  forward(input: NativeTensorIn): Promise<NativeTensorOut>;
  setTraining(training: boolean): Promise<void>;
  stateDict(): Promise<Array<NativeTensorOut & { name: string }>>;
  loadStateDict(
    entries: Array<NativeTensorIn & { name: string }>,
    strict: boolean,
  ): Promise<{ missingKeys: string[]; unexpectedKeys: string[] }>;
  to(device: string): Promise<string>;
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
}
