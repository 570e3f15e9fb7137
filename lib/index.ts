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
  resnet20,
  resnet32,
  resnet44,
  resnet56,
  resnet110,
  resnet1202,
  loadModel,
  type LoadModelOptions,
} from './builders.js';
export {
  architectures,
  architectureNames,
  cifarArchitectureNames,
  imagenetArchitectureNames,
  type ArchitectureName,
  type ArchitectureSpec,
  type BlockType,
  type ShortcutType,
  type StemType,
} from './architectures.js';
export { ResNet, type LoadStateDictOptions, type LoadStateDictResult, type StateDict, type InferenceEngineChoice, type InferenceEngineOptions } from './model.js';
export type { CifarModelOptions, MemoryFormat, ModelOptions, Precision, ResNetConfig, ResNetSpecOptions } from './options.js';
export { Tensor, dtypes, type DType, type TensorData, type TensorLike } from './tensor.js';
export { cudaAvailable, cudaDeviceCount, cpuBfloat16Available, getNumThreads, allocatorTuning, jpegDecoderCompiled, libtorchVersion, onednnEngineCompiled, setNumThreads } from './runtime.js';
export {
  AbortedError,
  DistributedError,
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
export { loadWeights, saveWeights, type LoadWeightsOptions, type SaveWeightsOptions, type WeightsFormat } from './weights/files.js';
export { downloadWeights, torchHubCheckpointsDir, type DownloadOptions, type DownloadProgress } from './weights/download.js';
export { imagenetCategories, weightsEntry, weightsNames, type WeightsEntry, type WeightsTransforms } from './weights/registry.js';
export { readSafetensors, writeSafetensors, parseSafetensors } from './weights/safetensors.js';
export { metadataKey, type ModelMetadata, type ModelStructure } from './weights/model-metadata.js';
export type { LoadOptions } from './model.js';
export * from './data/index.js';
export { lrAt, resolveSchedule, scheduleTypes, type ResolvedSchedule, type ScheduleOptions, type ScheduleType } from './train/schedule.js';
export { Trainer, type DistributedTrainingOptions, type OptimizerOptions, type StepResult, type TrainerOptions, type TrainerState } from './train/trainer.js';
export {
  ProcessGroup,
  defaultProcessGroup,
  destroyProcessGroup,
  distributedBackends,
  initProcessGroup,
  type DistributedBackend,
  type ProcessGroupOptions,
} from './distributed/process-group.js';
export { evaluate, fit, loadCheckpoint, saveCheckpoint, testTimeAugmentations, type BatchSource, type EarlyStoppingOptions, type EpochReport, type EvaluateOptions, type EvaluateResult, type FitOptions, type FitProgress, type FitReport, type TestTimeAugmentation } from './train/fit.js';
export { parseMetrics, readMetrics, type EpochRecord, type IterationRecord, type MetricsRecord, type RunRecord } from './train/metrics.js';
export { curvesSpec, loadRun, plotCurves, type CurveRun, type PlotOptions } from './train/curves.js';
export { runDegradation, resultsTable, type DegradationOptions, type DegradationReport, type NetResult } from './train/degradation.js';
export { readPth, writePth } from './weights/pth.js';
export { FeatureMap, featureLayout, type FeatureLayout } from './features.js';
export * from './image/index.js';
export { topPredictions, type ClassifyOptions, type Prediction } from './classify.js';
export * from './stream/index.js';
