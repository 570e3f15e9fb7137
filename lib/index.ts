export {
  createModel,
  createResNet,
  resnet18,
  resnet34,
  resnet50,
  resnet101,
  resnet152,
  resnext50_32x4d,
  resnext101_32x8d,
  resnext101_64x4d,
  wide_resnet50_2,
  wide_resnet101_2,
} from './builders.js';
export { architectures, architectureNames, type ArchitectureName, type ArchitectureSpec, type BlockType } from './architectures.js';
export { ResNet, type LoadStateDictOptions, type LoadStateDictResult, type StateDict } from './model.js';
export type { ModelOptions, ResNetConfig, ResNetSpecOptions } from './options.js';
export { Tensor, dtypes, type DType, type TensorData, type TensorLike } from './tensor.js';
export { cudaAvailable, cudaDeviceCount, getNumThreads, libtorchVersion, setNumThreads } from './runtime.js';
export {
  DeviceError,
  DisposedError,
  DownloadError,
  HashMismatchError,
  InvalidArgumentError,
  NativeError,
  ResNetError,
  ShapeError,
  UnsafeWeightsError,
  WeightsError,
} from './errors.js';
