// `resnet train` and `resnet eval`: the training loop and evaluation from the command line.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { ownEntry } from '../lib/validate.js';
import { architectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel } from '../lib/builders.js';
import { CIFAR10, CIFAR100, FashionMNIST, ImageFolder, MNIST } from '../lib/data/datasets.js';
import type { ImageDataset } from '../lib/data/dataset.js';
import { plotCurves, loadRun } from '../lib/train/curves.js';
import { evaluate, fit, loadCheckpoint } from '../lib/train/fit.js';
import type { ScheduleOptions } from '../lib/train/schedule.js';

export class UsageError extends Error {}

export const trainUsage = `  train --dataset D [--root DIR] [--arch A] [--epochs N] [--batch-size B] [--lr X]
        [--optimizer sgd|adamw] [--schedule cosine|multistep|step|constant] [--warmup N]
        [--seed S] [--augment] [--erasing P] [--label-smoothing X] [--weight-decay X]
        [--momentum X] [--no-nesterov] [--weights FILE] [--checkpoint-dir DIR] [--resume FILE] [--out FILE]
        [--run-dir DIR [--log-every N] [--plot]]   metrics.jsonl (+ checkpoints, curves.svg) in DIR
  eval  --dataset D [--root DIR] --arch A --weights FILE
        datasets: fashion-mnist, mnist, cifar10, cifar100, folder (ImageFolder, --size 224)`;

export async function loadData(name: string, split: 'train' | 'test', root: string | undefined, size: number): Promise<ImageDataset> {
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
    case 'folder':
      if (!root) throw new UsageError('--dataset folder needs --root DIR (with train/ and val/ inside)');
      return ImageFolder.load({ root: `${root}/${split === 'train' ? 'train' : 'val'}`, size });
    default:
      throw new UsageError(`unknown dataset '${name}'`);
  }
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

export async function train(args: string[], json: boolean): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
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
      'no-nesterov': { type: 'boolean', default: false },
      weights: { type: 'string' },
      'checkpoint-dir': { type: 'string' },
      resume: { type: 'string' },
      out: { type: 'string' },
      'run-dir': { type: 'string' },
      'log-every': { type: 'string', default: '50' },
      plot: { type: 'boolean', default: false },
    },
  });
  const runDir = values['run-dir'];
  if (values.plot && !runDir) throw new UsageError('--plot needs --run-dir DIR (the plot is DIR/curves.svg)');
  const checkpointDir = values['checkpoint-dir'] ?? runDir;
  if (!values.dataset) throw new UsageError('train needs --dataset');
  const size = Number(values.size);
  const [trainSet, testSet] = await Promise.all([
    loadData(values.dataset, 'train', values.root, size),
    loadData(values.dataset, 'test', values.root, size),
  ]);
  const arch = archOf(values.arch, 'resnet20');
  const [channels, height] = trainSet.imageShape;
  // --weights starts from a file (fine-tuning, or a second schedule); --resume restores a checkpoint.
  const model = await createModel(arch, {
    numClasses: trainSet.classes.length,
    inChannels: channels,
    seed: Number(values.seed),
    ...(values.weights !== undefined && { weights: values.weights }),
  });
  const epochs = Number(values.epochs);
  let batchSize = Number(values['batch-size']);
  if (batchSize > trainSet.length) {
    // Fine-tuning sets are often smaller than one default batch: train on the whole set per step.
    process.stderr.write(`resnet train: --batch-size ${batchSize} is more than the ${trainSet.length} training images; using ${trainSet.length}\n`);
    batchSize = trainSet.length;
  }
  const total = epochs * Math.floor(trainSet.length / batchSize);
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
  const number = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const x = Number(text);
    if (text.trim() === '' || !Number.isFinite(x) || x < 0) throw new UsageError(`--${flag} expects a non-negative number, got '${text}'`);
    return x;
  };
  const weightDecay = number('weight-decay', values['weight-decay']);
  const labelSmoothing = number('label-smoothing', values['label-smoothing']);
  const erasing = number('erasing', values.erasing);
  const momentum = number('momentum', values.momentum)!;
  const trainer = model.trainer({
    optimizer:
      values.optimizer === 'adamw'
        ? { type: 'adamw', lr, ...(weightDecay !== undefined && { weightDecay }) }
        : { type: 'sgd', lr, momentum, weightDecay: weightDecay ?? 5e-4, nesterov: !values['no-nesterov'] && momentum > 0 },
    ...(labelSmoothing !== undefined && { loss: { labelSmoothing } }),
    schedule,
  });
  if (values.resume) await loadCheckpoint(values.resume, model, trainer);
  const pad = Math.max(2, Math.round(height! / 8));
  const report = await fit(model, {
    train: trainSet,
    val: testSet,
    epochs,
    batchSize,
    trainer,
    seed: Number(values.seed),
    ...((values.augment || erasing !== undefined) && {
      augment: { ...(values.augment && { crop: { padding: pad }, hflip: true }), ...(erasing !== undefined && erasing > 0 && { randomErasing: { p: erasing } }) },
    }),
    ...(checkpointDir && { checkpointDir }),
    ...(runDir && { metricsFile: join(runDir, 'metrics.jsonl'), metricsEvery: Number(values['log-every']), runInfo: { dataset: values.dataset } }),
    ...(values.plot && runDir && { onEpoch: async () => writeFileAtomic(join(runDir, 'curves.svg'), await plotCurves([await loadRun(runDir)])) }),
    onProgress: json
      ? undefined
      : (p) =>
          process.stderr.write(
            `\repoch ${p.epoch + 1}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(3)} lr ${p.lr.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s, ` +
              `${formatEta(p.etaSeconds)} left ${p.batch === p.batches ? '\n' : ''}`,
          ),
  });
  if (values.out) await model.save(values.out);
  const last = report.epochs.at(-1);
  const summary = { arch: model.arch, dataset: values.dataset, epochs: report.epochs, seconds: report.seconds, weights: values.out ?? null };
  model.dispose();
  console.log(json ? JSON.stringify(summary) : `${arch}: test accuracy ${last?.val?.top1.toFixed(4) ?? 'n/a'} after ${epochs} epoch(s), ${report.seconds.toFixed(0)} s`);
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
  const { values } = parseArgs({ args, options: { ...common, weights: { type: 'string' } } });
  if (!values.dataset || !values.weights) throw new UsageError('eval needs --dataset and --weights');
  const data = await loadData(values.dataset, 'test', values.root, Number(values.size));
  const arch = archOf(values.arch, 'resnet20');
  const model = await createModel(arch, { numClasses: data.classes.length, inChannels: data.imageShape[0], weights: values.weights });
  const result = await evaluate(model, data, { batchSize: Number(values['batch-size']) });
  model.dispose();
  console.log(json ? JSON.stringify({ arch, dataset: values.dataset, ...result }) : `${arch} on ${values.dataset}: top-1 ${result.top1.toFixed(4)}, top-5 ${result.top5.toFixed(4)}, loss ${result.loss.toFixed(4)} (${result.count} images)`);
}
