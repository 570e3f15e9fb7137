// `resnet train` and `resnet eval`: the training loop and evaluation from the command line.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { ownEntry } from '../lib/validate.js';
import { architectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel, isRegistryName } from '../lib/builders.js';
import { CIFAR10, CIFAR100, FashionMNIST, ImageFolder, MNIST } from '../lib/data/datasets.js';
import type { ImageDataset } from '../lib/data/dataset.js';
import { randomSplit } from '../lib/data/split.js';
import { StreamingDataset } from '../lib/stream/streaming-dataset.js';
import type { PreprocessOptions, RGB } from '../lib/image/preprocess-options.js';
import type { ResNet } from '../lib/model.js';
import type { Tensor } from '../lib/tensor.js';
import { readWeightsFile } from '../lib/weights/files.js';
import { readModelMetadata } from '../lib/weights/model-metadata.js';
import { weightsEntry } from '../lib/weights/registry.js';
import { plotCurves, loadRun } from '../lib/train/curves.js';
import { evaluate, fit, loadCheckpoint, samplesPerRank, testTimeAugmentations, type EpochReport, type FitProgress, type TestTimeAugmentation } from '../lib/train/fit.js';
import type { ScheduleOptions } from '../lib/train/schedule.js';
import type { ProcessGroup } from '../lib/distributed/process-group.js';
import { joinLaunchedJob, launchLocal } from './distributed-launch.js';

export class UsageError extends Error {}

export const trainUsage = `  train --dataset D [--root DIR] [--arch A] [--epochs N] [--batch-size B] [--lr X]
        [--optimizer sgd|adamw] [--schedule cosine|multistep|step|constant] [--warmup N]
        [--seed S] [--augment] [--erasing P] [--label-smoothing X] [--weight-decay X]
        [--momentum X] [--nesterov | --no-nesterov] [--weights NAME|FILE] [--freeze-up-to LAYER]
        [--freeze-bn] [--val-split F] [--patience N] [--size S] [--checkpoint-dir DIR] [--resume FILE]
        [--out FILE] [--run-dir DIR [--log-every N] [--plot]] [--stream] [--skip-bad]
        [--nproc-per-node N] [--dist-backend gloo|nccl] [--dist-timeout S] [--log-all-ranks]
        --weights: torchvision's (DEFAULT, IMAGENET1K_V1, ...), a file or a URL; a head of another size
        is replaced. --out saves the weights with the classes and preprocessing (for predict, serve).
        --run-dir: metrics.jsonl (+ checkpoints, curves.svg) in DIR. --patience: early stopping.
        --nproc-per-node N: N data-parallel ranks on this machine (as torchrun); a process started
        with WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT set joins that job. --batch-size is per rank.
  eval  --dataset D [--root DIR] --weights FILE [--arch A] [--tta none|hflip]
        --tta hflip: test-time augmentation, the mean of each image's and its mirror image's softmax
        datasets: fashion-mnist, mnist, cifar10, cifar100, folder (an ImageFolder: DIR/train and
        DIR/val, or class folders right in DIR; images brought to --size, default 224), webdataset
        (DIR/train*.tar, DIR/val*.tar). --stream (and webdataset) decodes per batch, torchvision's
        ImageNet recipe; --skip-bad leaves unreadable images out instead of stopping`;

export async function loadData(name: string, split: 'train' | 'test', root: string | undefined, size: number, stats?: { mean: readonly number[]; std: readonly number[] }): Promise<ImageDataset> {
  const withRoot = <T extends object>(o: T) => (root === undefined ? o : { ...o, root });
  switch (name) {
    case 'fashion-mnist':
      return FashionMNIST.load(withRoot({ split }));
    case 'mnist':
      return MNIST.load({ root: root ?? '.', split });
    case 'cifar10':
      return CIFAR10.load({ root: root ?? '.', split });
    case 'cifar100':
      return CIFAR100.load({ root: root ?? '.', split });
    case 'folder': {
      if (!root) throw new UsageError('--dataset folder needs --root DIR (class folders in DIR, or in DIR/train and DIR/val)');
      const sub = join(root, split === 'train' ? 'train' : 'val');
      const hasSplits = await isFolder(join(root, 'train'));
      // Without train/ and val/, DIR itself is the training set (and --val-split makes a validation set).
      const folder = split === 'test' || hasSplits ? sub : root;
      if (split === 'test' && !(await isFolder(sub))) throw new UsageError(`there is no validation folder '${sub}' (use --val-split F to hold out part of the training images)`);
      return ImageFolder.load({ root: folder, size, ...(stats && { mean: [...stats.mean], std: [...stats.std] }) });
    }
    default:
      throw new UsageError(`unknown dataset '${name}'`);
  }
}

export async function isFolder(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

function archOf(name: string | undefined, fallback: ArchitectureName): ArchitectureName {
  const arch = name ?? fallback;
  if (!(architectureNames as string[]).includes(arch)) throw new UsageError(`unknown architecture '${arch}'`);
  return arch as ArchitectureName;
}

const common = {
  dataset: { type: 'string' },
  root: { type: 'string' },
  arch: { type: 'string' },
  size: { type: 'string', default: '224' },
  'batch-size': { type: 'string', default: '128' },
  seed: { type: 'string', default: '0' },
} as const;

export const trainOptions = {
  ...common,
  epochs: { type: 'string', default: '1' },
  lr: { type: 'string', default: '0.1' },
  optimizer: { type: 'string', default: 'sgd' },
  schedule: { type: 'string', default: 'cosine' },
  warmup: { type: 'string', default: '0' },
  augment: { type: 'boolean', default: false },
  erasing: { type: 'string' },
  'label-smoothing': { type: 'string' },
  'weight-decay': { type: 'string' },
  momentum: { type: 'string', default: '0.9' },
  nesterov: { type: 'boolean' },
  'no-nesterov': { type: 'boolean' },
  weights: { type: 'string' },
  'freeze-up-to': { type: 'string' },
  'freeze-bn': { type: 'boolean', default: false },
  'val-split': { type: 'string' },
  stream: { type: 'boolean', default: false },
  'skip-bad': { type: 'boolean', default: false },
  patience: { type: 'string' },
  'checkpoint-dir': { type: 'string' },
  resume: { type: 'string' },
  out: { type: 'string' },
  'run-dir': { type: 'string' },
  'log-every': { type: 'string', default: '50' },
  plot: { type: 'boolean', default: false },
  'nproc-per-node': { type: 'string' },
  'dist-backend': { type: 'string', default: 'gloo' },
  'dist-timeout': { type: 'string', default: '60' },
  'log-all-ranks': { type: 'boolean', default: false },
} as const;

export const evalOptions = { ...common, weights: { type: 'string' }, tta: { type: 'string', default: 'none' } } as const;

/** A non-negative number from a flag, or undefined when the flag is absent. */
function numberFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || x < 0) throw new UsageError(`--${flag} expects a non-negative number, got '${text}'`);
  return x;
}

/** A positive integer from a flag. */
export function integerFlag(flag: string, text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(x) || x <= 0) throw new UsageError(`--${flag} expects a positive integer, got '${text}'`);
  return x;
}


/**
 * The model to train: fresh, or from --weights (torchvision's by name, or a file). A head of
 * another size than the data set's classes (ImageNet's 1000, another data set's) is left out of
 * the load and keeps its fresh initialisation: fine-tuning.
 */
async function startingModel(archFlag: string | undefined, data: { classes: readonly string[]; imageShape: readonly number[] }, seed: number, weights: string | undefined, json: boolean): Promise<ResNet> {
  const { localWeights } = await import('./model-source.js');
  let arch = archFlag;
  let tensors: Record<string, Tensor> | undefined;
  if (weights !== undefined) {
    // torchvision's weights by name, or a URL: downloaded once into torch.hub's cache. Read once.
    const path = await localWeights(isRegistryName(weights) ? weightsEntry(archOf(arch, 'resnet20'), weights).url : weights, !json);
    const file = await readWeightsFile(path);
    tensors = file.tensors;
    if (!isRegistryName(weights)) {
      // A file saved with its description names its architecture: train that one unless told otherwise.
      const described = await readModelMetadata(path, file.metadata);
      if (described && arch === undefined) {
        if (!(architectureNames as string[]).includes(described.arch)) throw new UsageError(`'${weights}' holds a ${described.arch}, which resnet train cannot build; pass --arch`);
        arch = described.arch;
      }
    }
  }
  const model = await createModel(archOf(arch, 'resnet20'), { numClasses: data.classes.length, inChannels: data.imageShape[0], seed });
  if (tensors === undefined) return model;
  try {
    const head = tensors['fc.weight'];
    const newHead = head !== undefined && head.shape[0] !== data.classes.length;
    if (newHead && !json) process.stderr.write(`resnet train: ${weights} has a head of ${head.shape[0]} classes; training a new one for ${data.classes.length}\n`);
    // Classes and preprocessing are set from the data set after training: only the tensors matter here.
    await model.loadStateDict(tensors, newHead ? { exclude: ['fc'] } : {});
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** How an image file becomes this model's input, as the data set made its training images. */
function trainedPreprocessing(dataset: string, data: ImageDataset): PreprocessOptions | null {
  const [channels, height, width] = data.imageShape;
  if (channels !== 3) return null; // preprocess() makes RGB; a grayscale model keeps its classes only
  return {
    fit: dataset === 'folder' ? 'cover' : 'fill',
    crop: height === width ? height : [height, width],
    mean: [...data.mean] as unknown as RGB,
    std: [...data.std] as unknown as RGB,
  };
}

export async function train(args: string[], json: boolean): Promise<void> {
  const { values } = parseArgs({ args, options: trainOptions });
  const backend = values['dist-backend'];
  if (backend !== 'gloo' && backend !== 'nccl') throw new UsageError(`--dist-backend expects gloo or nccl, got '${backend}'`);
  const timeoutMs = Math.round(numberFlag('dist-timeout', values['dist-timeout'])! * 1000);
  if (!(timeoutMs > 0)) throw new UsageError(`--dist-timeout expects seconds above 0, got '${values['dist-timeout']}'`);
  if (values['nproc-per-node'] !== undefined) {
    const nproc = integerFlag('nproc-per-node', values['nproc-per-node']);
    if (process.env.WORLD_SIZE) throw new UsageError('--nproc-per-node starts a job of its own; this process is already a rank of one (WORLD_SIZE is set)');
    if (nproc > 1) {
      process.exitCode = await launchLocal(nproc, args.concat(json ? ['--json'] : []), { logAllRanks: values['log-all-ranks'], timeoutMs });
      return;
    }
  }
  const group = await joinLaunchedJob(backend, timeoutMs);
  try {
    await trainRank(values, json, group);
  } finally {
    await group?.destroy();
  }
}

type TrainValues = ReturnType<typeof parseArgs<{ args: string[]; options: typeof trainOptions }>>['values'];

/** One process of `resnet train`: the whole job, or one rank of a data-parallel one. */
async function trainRank(values: TrainValues, json: boolean, group: ProcessGroup | null): Promise<void> {
  // Rank 0 speaks for the job; the others are quiet unless --log-all-ranks.
  const main = group === null || group.isMain;
  const quiet = !main && !values['log-all-ranks'];
  const runDir = values['run-dir'];
  if (values.plot && !runDir) throw new UsageError('--plot needs --run-dir DIR (the plot is DIR/curves.svg)');
  if (values.nesterov && values['no-nesterov']) throw new UsageError('--nesterov and --no-nesterov contradict each other');
  const checkpointDir = values['checkpoint-dir'] ?? runDir;
  if (!values.dataset) throw new UsageError('train needs --dataset');
  const size = integerFlag('size', values.size);
  const seed = Number(values.seed);
  const valSplit = numberFlag('val-split', values['val-split']);
  if (valSplit !== undefined && !(valSplit > 0 && valSplit < 1)) throw new UsageError(`--val-split expects a fraction between 0 and 1, got '${values['val-split']}'`);
  // Fine-tuning torchvision's weights: normalise as they were trained (ImageNet's mean/std).
  const imagenetStats = values.weights !== undefined && isRegistryName(values.weights) ? { mean: ImageFolder.imagenetMean, std: ImageFolder.imagenetStd } : undefined;
  const erasing = numberFlag('erasing', values.erasing);
  let trainSet: ImageDataset | StreamingDataset;
  let testSet: ImageDataset | StreamingDataset | undefined;
  let preprocessing: PreprocessOptions | null;
  const streaming = values.dataset === 'webdataset' || values.stream;
  if (streaming) {
    if (values.dataset !== 'webdataset' && values.dataset !== 'folder') throw new UsageError(`--stream reads an ImageFolder (--dataset folder), not '${values.dataset}'`);
    if (valSplit !== undefined) throw new UsageError('--val-split needs an in-memory data set; a streamed one takes its validation images from DIR/val (or val*.tar)');
    const { streamingData } = await import('./stream-data.js');
    const data = await streamingData(values.dataset, values.root, size, { ...(erasing !== undefined && { erasing }), skipBad: values['skip-bad'] });
    trainSet = data.train;
    testSet = data.val;
    preprocessing = data.preprocessing;
  } else {
    let inMemory = await loadData(values.dataset, 'train', values.root, size, imagenetStats);
    let inMemoryTest: ImageDataset | undefined;
    if (valSplit !== undefined) [inMemory, inMemoryTest] = randomSplit(inMemory, valSplit, seed);
    else if (values.dataset !== 'folder' || (values.root && (await isFolder(join(values.root, 'val'))))) {
      // Validation images are normalised with the training set's statistics, as the model will see them.
      inMemoryTest = await loadData(values.dataset, 'test', values.root, size, inMemory);
      if (inMemoryTest.classes.join('\n') !== inMemory.classes.join('\n')) {
        throw new UsageError(`the validation set's classes (${inMemoryTest.classes.join(', ')}) are not the training set's (${inMemory.classes.join(', ')})`);
      }
    }
    trainSet = inMemory;
    testSet = inMemoryTest;
    preprocessing = trainedPreprocessing(values.dataset, inMemory);
  }
  const model = await startingModel(values.arch, trainSet, seed, values.weights, json || quiet);
  const epochs = integerFlag('epochs', values.epochs);
  let batchSize = integerFlag('batch-size', values['batch-size']);
  // Per rank in a data-parallel job: DistributedSampler's share (or an equal shard of tar files).
  const perRank = samplesPerRank(trainSet, group);
  if (batchSize > perRank) {
    // Fine-tuning sets are often smaller than one default batch: train on the whole set per step.
    if (!quiet) process.stderr.write(`resnet train: --batch-size ${batchSize} is more than the ${perRank} training images${group ? ' per rank' : ''}; using ${perRank}\n`);
    batchSize = perRank;
  }
  const total = epochs * Math.floor(perRank / batchSize);
  const warmupIters = Number(values.warmup);
  const schedules: Record<string, ScheduleOptions> = {
    cosine: { type: 'cosine', totalIters: total, warmupIters },
    multistep: { type: 'multistep', milestones: [Math.round(total / 2), Math.round((total * 3) / 4)], warmupIters },
    step: { type: 'step', stepSize: Math.max(1, Math.round(total / 3)), warmupIters },
    constant: { type: 'constant', warmupIters },
  };
  const schedule = ownEntry(schedules, values.schedule);
  if (!schedule) throw new UsageError(`unknown schedule '${values.schedule}'`);
  const lr = Number(values.lr);
  const weightDecay = numberFlag('weight-decay', values['weight-decay']);
  const labelSmoothing = numberFlag('label-smoothing', values['label-smoothing']);
  const momentum = numberFlag('momentum', values.momentum)!;
  if (values.nesterov && !(momentum > 0)) throw new UsageError('--nesterov needs a momentum above 0 (--momentum)');
  const patience = values.patience === undefined ? undefined : integerFlag('patience', values.patience);
  if (patience !== undefined && !testSet) throw new UsageError('--patience watches validation accuracy: it needs a validation set (DIR/val, or --val-split F)');
  const trainer = model.trainer({
    optimizer:
      values.optimizer === 'adamw'
        ? { type: 'adamw', lr, ...(weightDecay !== undefined && { weightDecay }) }
        : { type: 'sgd', lr, momentum, weightDecay: weightDecay ?? 5e-4, nesterov: !values['no-nesterov'] && momentum > 0 },
    ...(labelSmoothing !== undefined && { loss: { labelSmoothing } }),
    ...(values['freeze-up-to'] !== undefined && { freezeUpTo: values['freeze-up-to'] }),
    ...(values['freeze-bn'] && { freezeBatchNorm: true }),
    schedule,
    ...(group && { distributed: group }),
  });
  if (values.resume) await loadCheckpoint(values.resume, model, trainer);
  const [, height] = trainSet.imageShape;
  const pad = Math.max(2, Math.round(height! / 8));
  const progress = trainingProgress(json || quiet);
  let report;
  try {
    report = await fit(model, {
      train: trainSet,
      ...(testSet && { val: testSet }),
      epochs,
      batchSize,
      trainer,
      seed,
      ...(!streaming && (values.augment || erasing !== undefined) && {
        augment: { ...(values.augment && { crop: { padding: pad }, hflip: true }), ...(erasing !== undefined && erasing > 0 && { randomErasing: { p: erasing } }) },
      }),
      ...(checkpointDir && { checkpointDir }),
      ...(runDir && { metricsFile: join(runDir, 'metrics.jsonl'), metricsEvery: Number(values['log-every']), runInfo: { dataset: values.dataset } }),
      ...(patience !== undefined && { earlyStopping: { patience, restoreBest: true } }),
      onEpochEnd: async (entry) => {
        progress.epochEnd(entry);
        if (values.plot && runDir && main) await writeFileAtomic(join(runDir, 'curves.svg'), await plotCurves([await loadRun(runDir)]));
      },
      ...(progress.onProgress && { onProgress: progress.onProgress }),
    });
  } finally {
    progress.stop();
    if (trainSet instanceof StreamingDataset) await trainSet.close();
    if (testSet instanceof StreamingDataset) await testSet.close();
  }
  // What the model was trained on travels with its weights: predict and serve use it.
  model.setClasses(trainSet.classes);
  if (preprocessing) model.setPreprocessing(preprocessing);
  if (values.out && main) await model.save(values.out);
  const last = report.epochs.at(-1);
  const summary = { arch: model.arch, dataset: values.dataset, epochs: report.epochs, seconds: report.seconds, weights: values.out ?? null, ...(report.earlyStopping && { earlyStopping: report.earlyStopping }) };
  model.dispose();
  const stopped = report.earlyStopping?.stopped
    ? ` (stopped early; best epoch ${report.earlyStopping.bestEpoch}, top-1 ${report.earlyStopping.best.toFixed(4)}${report.earlyStopping.restored ? ', its weights kept' : ''})`
    : '';
  const accuracy = report.earlyStopping?.restored ? report.earlyStopping.best : last?.val?.top1;
  // Every rank finishes its last epoch before rank 0 (the store's host) leaves.
  await group?.barrier();
  if (quiet) return;
  console.log(json ? JSON.stringify(summary) : `${summary.arch}: ${testSet ? `validation accuracy ${accuracy?.toFixed(4) ?? 'n/a'}` : 'no validation set'} after ${report.epochs.length} epoch(s), ${report.seconds.toFixed(0)} s${stopped}`);
}

/**
 * Progress of `resnet train` on stderr: a bar with the ETA on a terminal, plain lines otherwise
 * (a log file gets one line per tenth of an epoch and one per epoch), nothing with --json.
 */
function trainingProgress(json: boolean): { onProgress?: (p: FitProgress) => void; epochEnd(e: EpochReport): void; stop(): void } {
  if (json) return { epochEnd() {}, stop() {} };
  const epochLine = (e: EpochReport) =>
    `epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)} accuracy ${e.trainAccuracy.toFixed(4)}` +
    (e.val ? `, validation loss ${e.val.loss.toFixed(4)} accuracy ${e.val.top1.toFixed(4)}` : '') +
    `, ${e.imagesPerSecond.toFixed(0)} img/s (waiting for data ${((100 * e.dataWaitSeconds) / e.seconds).toFixed(0)}% of the time), ${e.seconds.toFixed(0)} s` +
    (e.skipped ? `; ${e.skipped.count} unreadable image(s) skipped, e.g. ${e.skipped.examples[0]}` : '');
  const line = (p: FitProgress) =>
    `epoch ${p.epoch + 1}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(3)} lr ${p.lr.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s ` +
    `(steps alone ${p.stepImagesPerSecond.toFixed(0)}, data wait ${(100 * p.dataWaitFraction).toFixed(0)}%), ${formatEta(p.etaSeconds)} left`;
  if (!process.stderr.isTTY) {
    return {
      onProgress: (p) => {
        if (p.batch % Math.max(1, Math.ceil(p.batches / 10)) < 20 || p.batch === p.batches) process.stderr.write(`${line(p)}\n`);
      },
      epochEnd: (e) => process.stderr.write(`${epochLine(e)}\n`),
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: 'epoch {epoch} [{bar}] {value}/{total} loss {loss} lr {lr} {rate} img/s, data wait {wait}%, {eta_text} left', hideCursor: true, stream: process.stderr, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let epoch = -1;
  return {
    onProgress: (p) => {
      const payload = { epoch: `${p.epoch + 1}/${p.epochs}`, loss: p.loss.toFixed(3), lr: p.lr.toFixed(4), rate: p.imagesPerSecond.toFixed(0), wait: (100 * p.dataWaitFraction).toFixed(0), eta_text: formatEta(p.etaSeconds) };
      if (p.epoch !== epoch) {
        if (epoch >= 0) bar.stop();
        bar.start(p.batches, p.batch, payload);
        epoch = p.epoch;
      } else bar.update(p.batch, payload);
    },
    epochEnd: (e) => {
      if (epoch >= 0) bar.stop();
      epoch = -1;
      process.stderr.write(`${epochLine(e)}\n`);
    },
    stop: () => {
      if (epoch >= 0) bar.stop();
    },
  };
}

/** 3725 -> '1h02m', 125 -> '2m05s', 42 -> '42s'. */
function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export async function evalCommand(args: string[], json: boolean): Promise<void> {
  const { values } = parseArgs({ args, options: evalOptions });
  if (!values.dataset || !values.weights) throw new UsageError('eval needs --dataset and --weights');
  // A file `resnet train --out` wrote knows its architecture, classes and preprocessing; torchvision's
  // weights by name and bare files take --arch (and the data set's class count).
  const { modelFromWeights } = await import('./model-source.js');
  const model = await modelFromWeights(values.weights, values.arch ?? 'resnet20', { progress: !json });
  try {
    const preprocessing = model.preprocessing;
    const crop = preprocessing?.crop;
    const size = preprocessing?.fit !== undefined && preprocessing.fit !== 'shorter-side' && crop !== undefined ? (typeof crop === 'number' ? crop : crop[0]) : integerFlag('size', values.size);
    const stats = preprocessing?.mean && preprocessing.std ? { mean: preprocessing.mean, std: preprocessing.std } : undefined;
    const data = await loadData(values.dataset, 'test', values.root, size, stats);
    if (data.classes.length !== model.config.numClasses) {
      throw new UsageError(`the model has ${model.config.numClasses} outputs and the data set ${data.classes.length} classes`);
    }
    const tta = values.tta as TestTimeAugmentation;
    if (!testTimeAugmentations.includes(tta)) throw new UsageError(`--tta takes ${testTimeAugmentations.join(' or ')}, not '${values.tta}'`);
    const result = await evaluate(model, data, { batchSize: integerFlag('batch-size', values['batch-size']), tta });
    const withTta = tta === 'none' ? '' : `, test-time augmentation ${tta}`;
    console.log(json ? JSON.stringify({ arch: model.arch, dataset: values.dataset, tta, ...result }) : `${model.arch} on ${values.dataset}: top-1 ${result.top1.toFixed(4)}, top-5 ${result.top5.toFixed(4)}, loss ${result.loss.toFixed(4)} (${result.count} images${withTta})`);
  } finally {
    model.dispose();
  }
}
