// The training loop around Trainer: epochs over a data set with seeded shuffling and augmentation,
// evaluation, progress, per-epoch checkpoints, and exact resumption.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AugmentOptions } from '../data/batch-options.js';
import { DistributedSampler } from '../data/distributed-sampler.js';
import { hashSeed } from '../data/random.js';
import { shardLength, type ShardOptions } from '../data/sample-order.js';
import { ProcessGroup } from '../distributed/process-group.js';
import type { Batch } from '../data/batch-iterator.js';
import type { ResNet } from '../model.js';
import { Tensor } from '../tensor.js';
import * as v from '../validate.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { AbortedError, WeightsError } from '../errors.js';
import { MetricsLog, type EpochRecord } from './metrics.js';
import { trainingPort } from './port.js';
import type { Trainer } from './trainer.js';

/** Anything that yields batches the way ImageDataset does. */
export interface BatchSource {
  readonly length: number;
  /** false: batches() takes no `indices` (data-parallel fit() then splits with `shard`). Default true. */
  readonly randomAccess?: boolean;
  batches(options: {
    batchSize: number;
    shuffle?: boolean;
    seed?: number;
    epoch?: number;
    dropLast?: boolean;
    augment?: AugmentOptions;
    indices?: ArrayLike<number>;
    shard?: ShardOptions;
  }): AsyncIterable<Batch>;
}

/**
 * Images a rank trains on per epoch: the whole set alone; in a data-parallel job
 * DistributedSampler's share (ceil(length / worldSize), padded), or an equal shard of a source read
 * in sequence (floor). fit() and `resnet train` (its schedule's length) both count with this.
 */
export function samplesPerRank(train: Pick<BatchSource, 'length' | 'randomAccess'>, group: ProcessGroup | null): number {
  if (group === null) return train.length;
  return train.randomAccess === false ? shardLength(train.length, group.worldSize) : Math.ceil(train.length / group.worldSize);
}

/** This rank's part of an evaluation set: every worldSize-th sample, no padding (so no sample counts twice). */
function evaluationPart(data: BatchSource, group: ProcessGroup): { indices: Int32Array } | { shard: ShardOptions } {
  if (data.randomAccess === false) return { shard: { rank: group.rank, worldSize: group.worldSize } };
  const count = Math.max(0, Math.ceil((data.length - group.rank) / group.worldSize));
  return { indices: Int32Array.from({ length: count }, (_, i) => group.rank + i * group.worldSize) };
}

export interface EvaluateResult {
  loss: number;
  top1: number;
  top5: number;
  count: number;
}

/** Test-time augmentation: 'hflip' averages the class probabilities of each image and its mirror image. */
export type TestTimeAugmentation = 'none' | 'hflip';
export const testTimeAugmentations: readonly TestTimeAugmentation[] = ['none', 'hflip'];

export interface EvaluateOptions {
  batchSize?: number;
  signal?: AbortSignal;
  distributed?: ProcessGroup;
  /** Default 'none'. 'hflip' suits a model trained with horizontal flips; it costs a second forward. */
  tta?: TestTimeAugmentation;
}

/** Mean loss, top-1 and top-5 accuracy over a data set, in eval mode, without gradients. An
 * aborted `signal` stops it before the next batch with an AbortedError. With `distributed`, every
 * rank of the group evaluates its part (every worldSize-th sample) and all get the totals: call it
 * on every rank (it is collective). A model trained data-parallel first takes rank 0's buffers.
 * With `tta: 'hflip'` the loss is that of the averaged probabilities. */
export async function evaluate(model: ResNet, data: BatchSource, options: EvaluateOptions = {}): Promise<EvaluateResult> {
  v.knownKeys('evaluate', v.plainObject('options', options), ['batchSize', 'signal', 'distributed', 'tta']);
  const batchSize = v.positiveInteger('batchSize', options.batchSize ?? 256);
  const tta = v.oneOf('tta', options.tta ?? 'none', testTimeAugmentations);
  const { signal, distributed: group } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw v.invalid('AbortSignal', 'signal', signal);
  if (group !== undefined && !(group instanceof ProcessGroup)) throw v.invalid('a ProcessGroup from initProcessGroup()', 'distributed', group);
  const port = model[trainingPort]();
  let lossSum = 0;
  let top1 = 0;
  let top5 = 0;
  let count = 0;
  if (group) await port.syncBuffers(); // as DDP's forward: evaluation sees rank 0's BatchNorm statistics
  for await (const batch of data.batches({ batchSize, ...(group && evaluationPart(data, group)) })) {
    if (signal?.aborted) throw new AbortedError(`evaluate() was aborted after ${count} images`, { cause: signal.reason });
    const r = await port.evaluate(batch.images, batch.labels, tta === 'hflip');
    lossSum += r.lossSum;
    top1 += r.top1;
    top5 += r.top5;
    count += r.count;
  }
  if (group) [lossSum, top1, top5, count] = (await group.allReduceSum([lossSum, top1, top5, count])) as [number, number, number, number];
  return { loss: count ? lossSum / count : 0, top1: count ? top1 / count : 0, top5: count ? top5 / count : 0, count };
}

export interface FitProgress {
  epoch: number;
  epochs: number;
  /** Batches done in this epoch, and in it. */
  batch: number;
  batches: number;
  iteration: number;
  loss: number;
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
  /** Seconds left for the whole fit at this epoch's pace (training steps only, not evaluation). */
  etaSeconds: number;
  /** Images/s of the training steps alone: what the loop would do if data were free. */
  stepImagesPerSecond: number;
  /** Share of this epoch's time spent waiting for batches: near 0, the step is the bottleneck; near 1, the data. */
  dataWaitFraction: number;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  imagesPerSecond: number;
  seconds: number;
  /** Seconds the loop waited for batches, and spent in training steps. */
  dataWaitSeconds: number;
  stepSeconds: number;
  /** Samples a streaming data set left out (onBadSample 'skip'), with a few of the reasons. */
  skipped?: { count: number; examples: string[] };
  val?: EvaluateResult;
  checkpoint?: string;
}

export interface FitOptions {
  train: BatchSource;
  val?: BatchSource;
  epochs: number;
  trainer: Trainer;
  batchSize?: number;
  augment?: AugmentOptions;
  /** Seeds shuffling and augmentation (epoch e uses seed and e). Default 0. */
  seed?: number;
  /** Write checkpoint-<epoch>.safetensors here after every epoch. */
  checkpointDir?: string;
  onProgress?: (progress: FitProgress) => void;
  /** Calls onProgress every this many batches (and at each epoch's end). Default 20. */
  progressEvery?: number;
  /**
   * Records the run's curves here as JSON Lines (see lib/train/metrics.ts): training loss and error
   * every `metricsEvery` iterations, and per epoch the training and test loss and error, the lr and
   * images/s. A resumed run keeps the records up to its checkpoint and goes on from there.
   */
  metricsFile?: string;
  /** Iterations per `iteration` record. Default 50. */
  metricsEvery?: number;
  /** Added to the metrics file's `run` record (e.g. the data set's name). */
  runInfo?: Record<string, unknown>;
  /**
   * Stops when the validation metric has not improved for `patience` epochs (needs `val`).
   * `metric`: 'top1' (default, higher is better) or 'loss'; `minDelta`: the least change that
   * counts as better (default 0); `restoreBest`: load the best epoch's weights at the end
   * (default false, as Keras). A resumed fit starts counting again.
   */
  earlyStopping?: EarlyStoppingOptions;
  /** Awaited after every epoch, once its checkpoint and metrics are written, with its validation. */
  onEpochEnd?: (report: EpochReport) => void | Promise<void>;
  /**
   * Stops the fit before its next step once aborted: fit() rejects with an AbortedError whose
   * `cause` is the signal's reason. The model and trainer keep the state of the last step done
   * (save a checkpoint to resume from there).
   */
  signal?: AbortSignal;
}

export interface EarlyStoppingOptions {
  patience: number;
  metric?: 'top1' | 'loss';
  minDelta?: number;
  restoreBest?: boolean;
}

export interface FitReport {
  epochs: EpochReport[];
  iterations: number;
  seconds: number;
  /** With earlyStopping: the best epoch (1-based) and its value, and whether training stopped early. */
  earlyStopping?: { stopped: boolean; bestEpoch: number; best: number; restored: boolean };
}

function resolveEarlyStopping(value: unknown, hasVal: boolean): Required<EarlyStoppingOptions> | null {
  if (value === undefined) return null;
  const o = v.plainObject('earlyStopping', value);
  v.knownKeys('earlyStopping', o, ['patience', 'metric', 'minDelta', 'restoreBest']);
  if (!hasVal) throw v.invalid('a val data set to watch (earlyStopping watches validation)', 'val', undefined);
  const minDelta = o.minDelta ?? 0;
  if (typeof minDelta !== 'number' || !Number.isFinite(minDelta) || minDelta < 0) throw v.invalid('a non-negative number', 'earlyStopping.minDelta', minDelta);
  return {
    patience: v.positiveInteger('earlyStopping.patience', o.patience),
    metric: o.metric === undefined ? 'top1' : v.oneOf('earlyStopping.metric', o.metric, ['top1', 'loss'] as const),
    minDelta,
    restoreBest: v.boolean('earlyStopping.restoreBest', o.restoreBest ?? false),
  };
}

const fitOptionNames = ['train', 'val', 'epochs', 'trainer', 'batchSize', 'augment', 'seed', 'checkpointDir', 'onProgress', 'progressEvery', 'metricsFile', 'metricsEvery', 'runInfo', 'earlyStopping', 'onEpochEnd', 'signal'];

/**
 * Trains for `epochs` epochs. A trainer restored from a checkpoint (loadCheckpoint) resumes at its
 * iteration: the epoch and batch it stopped at, with the same shuffling and augmentation, so a
 * resumed run ends with the weights an uninterrupted run ends with.
 */
export async function fit(model: ResNet, options: FitOptions): Promise<FitReport> {
  v.knownKeys('fit', v.plainObject('options', options), fitOptionNames);
  const { train, val, trainer, augment, checkpointDir, onProgress, metricsFile, onEpochEnd } = options;
  const epochs = v.positiveInteger('epochs', options.epochs);
  const batchSize = v.positiveInteger('batchSize', options.batchSize ?? 128);
  const seed = v.nonNegativeInteger('seed', options.seed ?? 0);
  const every = v.positiveInteger('progressEvery', options.progressEvery ?? 20);
  const metricsEvery = v.positiveInteger('metricsEvery', options.metricsEvery ?? 50);
  if (metricsFile !== undefined && (typeof metricsFile !== 'string' || metricsFile === '')) throw v.invalid('non-empty path', 'metricsFile', metricsFile);
  const runInfo = options.runInfo === undefined ? {} : v.plainObject('runInfo', options.runInfo);
  if (onEpochEnd !== undefined && typeof onEpochEnd !== 'function') throw v.invalid('function', 'onEpochEnd', onEpochEnd);
  const stopping = resolveEarlyStopping(options.earlyStopping, val !== undefined);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw v.invalid('AbortSignal', 'signal', signal);
  const stopIfAborted = () => {
    if (signal?.aborted) throw new AbortedError(`fit() was aborted after iteration ${trainer.iteration}`, { cause: signal.reason });
  };
  stopIfAborted();
  // Data-parallel (a trainer with `distributed`): each rank takes its part of every epoch, as
  // PyTorch's DistributedSampler gives it (or `shard` for sources read in sequence); batchSize is
  // per rank; rank 0 alone writes checkpoints and metrics; losses and validation are totals.
  const group = trainer.group;
  const sharded = group !== null && train.randomAccess === false;
  const sampler = group && !sharded ? new DistributedSampler(train.length, { numReplicas: group.worldSize, rank: group.rank, shuffle: true, seed }) : null;
  const perRank = samplesPerRank(train, group);
  const perEpoch = Math.floor(perRank / batchSize); // dropLast: every step sees a full batch
  if (perEpoch === 0) throw v.invalid(`at most ${perRank} (the training set's size${group ? ' per rank' : ''})`, 'batchSize', batchSize);
  const main = group === null || group.isMain;
  const epochOrder = (epoch: number) =>
    sampler
      ? // The sampler fixes the order; the seed left to the data set draws augmentation, per rank.
        { indices: sampler.indices(epoch), seed: hashSeed(seed, group!.rank) }
      : { shuffle: true, seed, ...(group && { shard: { rank: group.rank, worldSize: group.worldSize } }) };
  if (checkpointDir !== undefined) await mkdir(checkpointDir, { recursive: true });
  const metrics =
    metricsFile === undefined || !main
      ? undefined
      : await MetricsLog.open(
          metricsFile,
          { ...runInfo, type: 'run', arch: model.arch, numParameters: model.numParameters(), batchSize, epochs, iterationsPerEpoch: perEpoch, seed, optimizer: trainer.options.optimizer, schedule: trainer.schedule },
          trainer.iteration,
        );

  const started = performance.now();
  const report: EpochReport[] = [];
  // Early stopping: the best value so far (in "higher is better" form), its epoch, its weights.
  const watch = stopping && { best: -Infinity, bestEpoch: 0, waited: 0, weights: null as Record<string, Tensor> | null, stopped: false };
  for (let epoch = Math.floor(trainer.iteration / perEpoch); epoch < epochs; epoch++) {
    const skip = trainer.iteration - epoch * perEpoch; // batches this epoch already did before a resume
    const epochStart = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let index = 0;
    const window = { loss: 0, correct: 0, seen: 0, started: performance.now() };
    let lr = trainer.lr;
    let waitMs = 0;
    let stepMs = 0;
    const batches = train.batches({ batchSize, epoch, dropLast: true, ...epochOrder(epoch), ...(augment && { augment }) });
    const iterator = batches[Symbol.asyncIterator]();
    for (;;) {
      const waited = performance.now();
      const next = await iterator.next();
      if (next.done) break;
      const batch = next.value;
      if (index++ < skip) continue;
      waitMs += performance.now() - waited;
      try {
        stopIfAborted();
      } catch (error) {
        await iterator.return?.();
        throw error;
      }
      const stepStart = performance.now();
      const r = await trainer.step(batch.images, batch.labels);
      stepMs += performance.now() - stepStart;
      lossSum += r.loss * r.count;
      correct += r.correct;
      seen += r.count;
      lr = r.lr;
      if (metrics) {
        window.loss += r.loss * r.count;
        window.correct += r.correct;
        window.seen += r.count;
        if (r.iteration % metricsEvery === 0) {
          const now = performance.now();
          await metrics.write({
            type: 'iteration', epoch, iteration: r.iteration, trainLoss: window.loss / window.seen, trainError: 1 - window.correct / window.seen, lr: r.lr,
            imagesPerSecond: window.seen / ((now - window.started) / 1000),
          });
          Object.assign(window, { loss: 0, correct: 0, seen: 0, started: now });
        }
      }
      if (onProgress && (index % every === 0 || index === perEpoch)) {
        const seconds = (performance.now() - epochStart) / 1000;
        const stepsLeft = epochs * perEpoch - r.iteration;
        onProgress({
          epoch, epochs, batch: index, batches: perEpoch, iteration: r.iteration, loss: r.loss, accuracy: r.accuracy, lr: r.lr, imagesPerSecond: seen / seconds,
          etaSeconds: (stepsLeft * batchSize) / (seen / seconds),
          stepImagesPerSecond: seen / (stepMs / 1000),
          dataWaitFraction: Math.min(1, waitMs / 1000 / seconds),
        });
      }
    }
    const seconds = (performance.now() - epochStart) / 1000;
    if (group) [lossSum, correct, seen] = (await group.allReduceSum([lossSum, correct, seen])) as [number, number, number];
    const entry: EpochReport = {
      epoch, trainLoss: seen ? lossSum / seen : 0, trainAccuracy: seen ? correct / seen : 0, imagesPerSecond: seen / seconds, seconds,
      dataWaitSeconds: waitMs / 1000, stepSeconds: stepMs / 1000,
    };
    const streamStats = (batches as { stats?: () => { skipped: number; skippedExamples: string[] } }).stats?.();
    if (streamStats && streamStats.skipped > 0) entry.skipped = { count: streamStats.skipped, examples: streamStats.skippedExamples };
    if (val) entry.val = await evaluate(model, val, { batchSize: Math.max(batchSize, 256), ...(signal && { signal }), ...(group && { distributed: group }) });
    if (checkpointDir !== undefined) {
      entry.checkpoint = join(checkpointDir, `checkpoint-${epoch + 1}.safetensors`);
      if (main) await saveCheckpoint(entry.checkpoint, model, trainer);
      // No rank starts the next epoch (and no launcher restarts a job) before the file is complete.
      if (group) await group.barrier();
    }
    if (metrics) await metrics.write(epochRecord(entry, trainer.iteration, lr));
    report.push(entry);
    await onEpochEnd?.(entry);
    if (stopping && watch && entry.val) {
      const value = stopping.metric === 'top1' ? entry.val.top1 : -entry.val.loss;
      if (value > watch.best + stopping.minDelta) {
        Object.assign(watch, { best: value, bestEpoch: epoch + 1, waited: 0 });
        if (stopping.restoreBest) watch.weights = await model.stateDict();
      } else if (++watch.waited >= stopping.patience) {
        watch.stopped = true;
        break;
      }
    }
  }
  const result: FitReport = { epochs: report, iterations: trainer.iteration, seconds: (performance.now() - started) / 1000 };
  if (stopping && watch) {
    const restored = watch.weights !== null && watch.bestEpoch !== report.at(-1)?.epoch! + 1;
    if (restored) await model.loadStateDict(watch.weights!);
    result.earlyStopping = { stopped: watch.stopped, bestEpoch: watch.bestEpoch, best: stopping.metric === 'top1' ? watch.best : -watch.best, restored };
  }
  return result;
}

function epochRecord(entry: EpochReport, iteration: number, lr: number): EpochRecord {
  const record: EpochRecord = {
    type: 'epoch', epoch: entry.epoch + 1, iteration, trainLoss: entry.trainLoss, trainError: 1 - entry.trainAccuracy, lr,
    imagesPerSecond: entry.imagesPerSecond, seconds: entry.seconds,
  };
  if (entry.val) Object.assign(record, { testLoss: entry.val.loss, testError: 1 - entry.val.top1, testTop5Error: 1 - entry.val.top5 });
  return record;
}

/** Weights, optimizer state and schedule position in one safetensors file. */
export async function saveCheckpoint(path: string, model: ResNet, trainer: Trainer): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(await model.stateDict())) tensors[`model.${k}`] = t;
  const state = await trainer.state();
  for (const [k, t] of Object.entries(state.optimizer)) tensors[`optimizer.${k}`] = t;
  await writeSafetensors(path, tensors, {
    format: 'libtorch-resnet-checkpoint',
    arch: model.arch,
    iteration: String(state.iteration),
    trainer: JSON.stringify({ optimizer: trainer.options.optimizer, schedule: trainer.schedule }),
  });
}

/** Restores a checkpoint into a model and a trainer configured like the one that wrote it. */
export async function loadCheckpoint(path: string, model: ResNet, trainer: Trainer): Promise<{ iteration: number }> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata.format !== 'libtorch-resnet-checkpoint') {
    throw new WeightsError(`'${path}' is not a libtorch-resnet training checkpoint (it has no format 'libtorch-resnet-checkpoint' in its metadata)`);
  }
  const weights: Record<string, Tensor> = {};
  const optimizer: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (k.startsWith('model.')) weights[k.slice(6)] = t;
    else if (k.startsWith('optimizer.')) optimizer[k.slice(10)] = t;
  }
  await model.loadStateDict(weights);
  const iteration = Number(metadata.iteration);
  await trainer.loadState({ iteration, optimizer });
  return { iteration };
}
