// Image preprocessing: files or encoded bytes to a pretrained model's input tensor.
export {
  preprocess,
  preprocessBatch,
  fromTransforms,
  fits,
  imagenetMean,
  imagenetStd,
  interpolations,
  resamplers,
  type Fit,
  type ImageInput,
  type Interpolation,
  type PreprocessBatchOptions,
  type PreprocessOptions,
  type Resampler,
  type TransformsOptions,
  type RGB,
} from './preprocess.js';
export { ImageError } from './errors.js';
