// What training needs from a model, handed out by ResNet under a module-private symbol so that the
// trainer reaches the native calls without making them part of ResNet's public surface.
import type { NativeEvalResult, NativeStepResult, NativeTrainOptions } from '../native.js';
import type { Tensor } from '../tensor.js';

export const trainingPort = Symbol('libtorch-resnet.trainingPort');

export interface TrainingPort {
  configure(options: NativeTrainOptions): Promise<void>;
  step(images: Tensor, labels: Tensor, lr: number, accumulate: boolean): Promise<NativeStepResult>;
  /** Data-parallel training: rank 0's buffers to every rank before an evaluation (collective). */
  syncBuffers(): Promise<void>;
  evaluate(images: Tensor, labels: Tensor, flipAverage?: boolean): Promise<NativeEvalResult>;
  optimizerState(): Promise<Record<string, Tensor>>;
  loadOptimizerState(state: Record<string, Tensor>): Promise<void>;
  numClasses: number;
  /** Stages of the network ('layer1' ... 'layer4' or 'layer3'), for freezeUpTo. */
  stages: string[];
}
