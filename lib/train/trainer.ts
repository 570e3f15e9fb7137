// A training run's optimizer, loss, schedule and position: model.trainer({...}).step(x, y) is one
// native job (forward in train mode, cross-entropy, backward, optimizer step), equal to PyTorch's
// loop of zero_grad / forward / loss / backward / step.
import { InvalidArgumentError } from '../errors.js';
import { Tensor, type TensorLike } from '../tensor.js';
import * as v from '../validate.js';
import { lrAt, resolveSchedule, type ResolvedSchedule, type ScheduleOptions } from './schedule.js';
import type { TrainingPort } from './port.js';
import type { NativeTrainOptions } from '../native.js';
import { ProcessGroup } from '../distributed/process-group.js';

export interface OptimizerOptions {
  type: 'sgd' | 'adamw';
  lr: number;
  /** SGD */
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** AdamW: default [0.9, 0.999] */
  betas?: [number, number];
  eps?: number;
  /** Default 0 for SGD, 0.01 for AdamW (PyTorch's defaults). */
  weightDecay?: number;
  /** No weight decay for BatchNorm weights and biases, nor for any bias. */
  excludeNormAndBiasFromWeightDecay?: boolean;
}

export interface TrainerOptions {
  optimizer: OptimizerOptions;
  loss?: { labelSmoothing?: number; classWeights?: number[] };
  /** Default: constant. */
  schedule?: ScheduleOptions;
  /** Clip the total gradient norm to this (torch.nn.utils.clip_grad_norm_). */
  clipGradNorm?: number;
  /** Parameter name prefixes to freeze: ['conv1', 'bn1', 'layer1'] freezes those parts. */
  freeze?: string[];
  /** Freezes the stem and every stage up to and including this one, e.g. 'layer3'. */
  freezeUpTo?: string;
  /** Keep BatchNorm layers in eval mode (running statistics fixed) while training. */
  freezeBatchNorm?: boolean;
  /**
   * Data-parallel training over a process group (initProcessGroup()), as PyTorch's
   * DistributedDataParallel with its defaults: rank 0's weights and buffers go to every rank
   * when the trainer is created, each step averages the gradients of all ranks (bucketed
   * all-reduces overlapped with backward, c10d's Reducer), and rank 0's buffers (BatchNorm
   * statistics) are broadcast before each step. Every rank must create its trainer the same way.
   */
  distributed?: ProcessGroup | DistributedTrainingOptions;
}

export interface DistributedTrainingOptions {
  group: ProcessGroup;
  /** DDP's broadcast_buffers. Default true. */
  broadcastBuffers?: boolean;
  /** DDP's bucket_cap_mb. Default 25. */
  bucketCapMb?: number;
}

export interface StepResult {
  loss: number;
  correct: number;
  count: number;
  accuracy: number;
  /** The learning rate this step used. */
  lr: number;
  /** Steps done, this one included. */
  iteration: number;
  /** Total gradient norm before clipping (only with clipGradNorm). */
  gradNorm?: number;
}

export interface TrainerState {
  iteration: number;
  optimizer: Record<string, Tensor>;
}

const trainerOptionNames = ['optimizer', 'loss', 'schedule', 'clipGradNorm', 'freeze', 'freezeUpTo', 'freezeBatchNorm', 'distributed'];

function resolveDistributed(value: unknown): { group: ProcessGroup; broadcastBuffers: boolean; bucketCapMb: number } | null {
  if (value === undefined) return null;
  if (value instanceof ProcessGroup) return { group: value, broadcastBuffers: true, bucketCapMb: 25 };
  const o = v.plainObject('distributed', value);
  v.knownKeys('distributed', o, ['group', 'broadcastBuffers', 'bucketCapMb']);
  if (!(o.group instanceof ProcessGroup)) throw v.invalid('a ProcessGroup from initProcessGroup()', 'distributed.group', o.group);
  const bucketCapMb = o.bucketCapMb ?? 25;
  if (typeof bucketCapMb !== 'number' || !(bucketCapMb > 0)) throw v.invalid('a positive number', 'distributed.bucketCapMb', bucketCapMb);
  return { group: o.group, broadcastBuffers: v.boolean('distributed.broadcastBuffers', o.broadcastBuffers ?? true), bucketCapMb };
}
const optimizerOptionNames = ['type', 'lr', 'momentum', 'dampening', 'nesterov', 'betas', 'eps', 'weightDecay', 'excludeNormAndBiasFromWeightDecay'];

function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw v.invalid('non-negative number', name, value);
  return value;
}

function resolveOptimizer(value: unknown): Required<Omit<OptimizerOptions, 'betas'>> & { betas: [number, number] } {
  const o = v.plainObject('optimizer', value) as Partial<OptimizerOptions>;
  v.knownKeys('optimizer', o as Record<string, unknown>, optimizerOptionNames);
  const type = v.oneOf('optimizer.type', o.type, ['sgd', 'adamw'] as const);
  const lr = nonNegative('optimizer.lr', o.lr ?? Number.NaN, 0);
  const momentum = nonNegative('optimizer.momentum', o.momentum, 0);
  const dampening = nonNegative('optimizer.dampening', o.dampening, 0);
  const nesterov = v.boolean('optimizer.nesterov', o.nesterov ?? false);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new InvalidArgumentError('Nesterov momentum requires a momentum and zero dampening');
  }
  const betas = o.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)) {
    throw v.invalid('[beta1, beta2] in [0, 1)', 'optimizer.betas', betas);
  }
  return {
    type,
    lr,
    momentum,
    dampening,
    nesterov,
    betas: [betas[0]!, betas[1]!],
    eps: nonNegative('optimizer.eps', o.eps, 1e-8),
    weightDecay: nonNegative('optimizer.weightDecay', o.weightDecay, type === 'adamw' ? 0.01 : 0),
    excludeNormAndBiasFromWeightDecay: v.boolean('optimizer.excludeNormAndBiasFromWeightDecay', o.excludeNormAndBiasFromWeightDecay ?? false),
  };
}

/** Labels as an int64 tensor [N]: a Tensor, or any array of class indices. */
export function labelTensor(labels: Tensor | TensorLike | ArrayLike<number> | BigInt64Array): Tensor<BigInt64Array> {
  if (labels instanceof BigInt64Array) return new Tensor(labels, [labels.length]);
  if (labels instanceof Tensor || (typeof labels === 'object' && labels !== null && 'shape' in labels)) {
    const t = Tensor.from(labels as TensorLike);
    if (t.dtype === 'int64') return t as Tensor<BigInt64Array>;
    return new Tensor(BigInt64Array.from(Array.from(t.data as ArrayLike<number>, (x) => BigInt(x))), t.shape);
  }
  if (typeof labels === 'object' && labels !== null && 'length' in labels) {
    const out = new BigInt64Array(labels.length);
    for (let i = 0; i < labels.length; i++) {
      const x = labels[i]!;
      if (!Number.isSafeInteger(x) || x < 0) throw v.invalid('non-negative integer class indices', 'labels', labels);
      out[i] = BigInt(x);
    }
    return new Tensor(out, [out.length]);
  }
  throw v.invalid('a Tensor or an array of class indices', 'labels', labels);
}

export class Trainer {
  readonly options: Readonly<TrainerOptions>;
  /** The process group of data-parallel training, or null. */
  readonly group: ProcessGroup | null;
  readonly schedule: ResolvedSchedule;
  readonly #port: TrainingPort;
  readonly #ready: Promise<void>;
  readonly #baseLr: number;
  #iteration = 0;

  /** @internal Use model.trainer(options). */
  constructor(port: TrainingPort, options: TrainerOptions) {
    const o = v.plainObject('options', options);
    v.knownKeys('trainer', o, trainerOptionNames);
    const optimizer = resolveOptimizer(options.optimizer);
    this.schedule = resolveSchedule(options.schedule ?? { type: 'constant' });
    const loss = v.plainObject('loss', options.loss ?? {});
    v.knownKeys('loss', loss, ['labelSmoothing', 'classWeights']);
    const labelSmoothing = nonNegative('loss.labelSmoothing', options.loss?.labelSmoothing, 0);
    if (labelSmoothing > 1) throw v.invalid('number between 0 and 1', 'loss.labelSmoothing', labelSmoothing);
    const classWeights = options.loss?.classWeights;
    if (classWeights !== undefined && (!Array.isArray(classWeights) || classWeights.length !== port.numClasses || !classWeights.every((w) => typeof w === 'number' && w >= 0))) {
      throw v.invalid(`an array of ${port.numClasses} non-negative numbers`, 'loss.classWeights', classWeights);
    }
    const clipGradNorm = nonNegative('clipGradNorm', options.clipGradNorm, 0);
    const freeze = [...(options.freeze ?? [])];
    if (!Array.isArray(options.freeze ?? []) || !freeze.every((p) => typeof p === 'string' && p !== '')) {
      throw v.invalid('an array of parameter name prefixes', 'freeze', options.freeze);
    }
    if (options.freezeUpTo !== undefined) {
      const stage = v.oneOf('freezeUpTo', options.freezeUpTo, ['stem', ...port.stages]);
      freeze.push('conv1', 'bn1', ...port.stages.slice(0, port.stages.indexOf(stage) + 1));
    }
    const freezeBatchNorm = v.boolean('freezeBatchNorm', options.freezeBatchNorm ?? false);
    const distributed = resolveDistributed(options.distributed);
    this.group = distributed?.group ?? null;
    this.options = Object.freeze({ ...options, optimizer, freeze });
    this.#baseLr = optimizer.lr;
    this.#port = port;
    const native: NativeTrainOptions = {
      optimizer: {
        type: optimizer.type,
        momentum: optimizer.momentum,
        dampening: optimizer.dampening,
        nesterov: optimizer.nesterov,
        weightDecay: optimizer.weightDecay,
        beta1: optimizer.betas[0],
        beta2: optimizer.betas[1],
        eps: optimizer.eps,
        excludeNormAndBiasFromWeightDecay: optimizer.excludeNormAndBiasFromWeightDecay,
      },
      labelSmoothing,
      clipGradNorm,
      freeze,
      freezeBatchNorm,
      ...(classWeights && { classWeights }),
      ...(distributed && {
        processGroup: distributed.group.nativeHandle,
        broadcastBuffers: distributed.broadcastBuffers,
        bucketCapBytes: Math.round(distributed.bucketCapMb * 1024 * 1024),
      }),
    };
    // Queued now, so it runs before any step the caller queues after creating the trainer.
    this.#ready = port.configure(native);
    this.#ready.catch(() => undefined); // reported by the first step instead
  }

  /** Steps done so far. */
  get iteration(): number {
    return this.#iteration;
  }

  /** The learning rate the next step will use. */
  get lr(): number {
    return lrAt(this.schedule, this.#baseLr, this.#iteration);
  }

  /**
   * One optimizer step on a batch: images float32 [N, C, H, W], labels class indices [N]. After
   * accumulate() calls, the gradients they left are added to this batch's before the update.
   */
  async step(images: Tensor | TensorLike, labels: Tensor | TensorLike | ArrayLike<number> | BigInt64Array): Promise<StepResult> {
    return this.#run(images, labels, false);
  }

  /**
   * Forward and backward on a batch without updating the weights: its gradients add to those of
   * the next step() (gradient accumulation; the gradients are summed, as repeated backward() calls
   * sum them in PyTorch). In data-parallel training this is DDP's no_sync(): no all-reduce until
   * that step, which averages the accumulated sums across ranks. The iteration does not advance.
   */
  async accumulate(images: Tensor | TensorLike, labels: Tensor | TensorLike | ArrayLike<number> | BigInt64Array): Promise<Omit<StepResult, 'gradNorm'>> {
    return this.#run(images, labels, true);
  }

  async #run(images: Tensor | TensorLike, labels: Tensor | TensorLike | ArrayLike<number> | BigInt64Array, accumulate: boolean): Promise<StepResult> {
    const x = Tensor.from(images);
    const y = labelTensor(labels);
    if (y.ndim !== 1 || x.ndim !== 4 || y.shape[0] !== x.shape[0]) {
      throw v.invalid(`labels of shape [${x.shape[0]}] for a batch of ${x.shape[0]} images`, 'labels', `shape [${y.shape.join(', ')}]`);
    }
    await this.#ready;
    const lr = this.lr;
    const r = await this.#port.step(x, y, lr, accumulate);
    if (accumulate) return { loss: r.loss, correct: r.correct, count: r.count, accuracy: r.count ? r.correct / r.count : 0, lr, iteration: this.#iteration };
    this.#iteration++;
    return {
      loss: r.loss,
      correct: r.correct,
      count: r.count,
      accuracy: r.count ? r.correct / r.count : 0,
      lr,
      iteration: this.#iteration,
      ...(this.options.clipGradNorm ? { gradNorm: r.gradNorm } : {}),
    };
  }

  /** The optimizer's state and the position in the schedule (for checkpoints). */
  async state(): Promise<TrainerState> {
    await this.#ready;
    return { iteration: this.#iteration, optimizer: await this.#port.optimizerState() };
  }

  /** Restores what state() returned: the run continues exactly where it stopped. */
  async loadState(state: TrainerState): Promise<void> {
    v.plainObject('state', state);
    const iteration = v.nonNegativeInteger('state.iteration', state.iteration);
    await this.#ready;
    await this.#port.loadOptimizerState(v.plainObject('state.optimizer', state.optimizer) as Record<string, Tensor>);
    this.#iteration = iteration;
  }
}
