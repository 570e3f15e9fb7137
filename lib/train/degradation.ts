// The paper's degradation experiment (He et al., section 4.2 and Figure 6): plain nets and ResNets
// of the same depths, trained with one recipe, compared by training and test error.
//
// The recipe is section 4.2's: SGD with momentum 0.9 (no Nesterov), weight decay 1e-4, batch 128,
// lr 0.1 divided by 10 at 50% and 75% of training (32k and 48k of 64k iterations in the paper),
// 4-pixel padding with a random crop and a horizontal flip, option-A shortcuts for the ResNets.
//
// Each net trains in its own folder under outDir (metrics.jsonl, checkpoint-<epoch>.safetensors,
// result.json once done), so the experiment runs in stages: `nets` picks the ones to train now, a
// finished net is skipped, and an interrupted one resumes from its last checkpoint, ending exactly
// where an uninterrupted run ends. The table (results.json, results.md) and the figure
// (degradation.svg) are written from whatever nets are finished.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { createModel } from '../builders.js';
import type { ImageDataset } from '../data/dataset.js';
import { InvalidArgumentError } from '../errors.js';
import * as v from '../validate.js';
import { plotCurves, type CurveRun } from './curves.js';
import { evaluate, fit, loadCheckpoint, type FitProgress } from './fit.js';
import { readMetrics } from './metrics.js';

export const degradationDepths = [20, 32, 44, 56, 110] as const;
type Depth = (typeof degradationDepths)[number];

export interface DegradationOptions {
  train: ImageDataset;
  test: ImageDataset;
  /** Folder of the whole experiment; each net gets a sub-folder named after it. */
  outDir: string;
  /** Default [20, 56]. Each depth gives a plain net and a ResNet. */
  depths?: number[];
  /** Train only these nets now (e.g. ['plain20']); the others stay as they are. Default: all. */
  nets?: string[];
  /** Default 5. */
  epochs?: number;
  /** Seeds the weights, the shuffling and the augmentation; the same for every net. Default 0. */
  seed?: number;
  /** Default 128 (the paper's). */
  batchSize?: number;
  /** Default 'cpu'. */
  device?: string;
  onProgress?: (net: string, progress: FitProgress) => void;
  onLog?: (message: string) => void;
}

export interface NetResult {
  net: string;
  family: 'plain' | 'resnet';
  depth: number;
  numParameters: number;
  epochs: number;
  iterations: number;
  /** The last epoch's mean training error (train mode, augmented images), as the paper's curves. */
  trainError: number;
  /** The training set in eval mode, without augmentation. */
  trainEvalError: number;
  testError: number;
  /** Training time summed over the epochs (resumed stages included), evaluation excluded. */
  seconds: number;
}

export interface DegradationReport {
  results: NetResult[];
  /** Nets of the experiment with no result yet. */
  pending: string[];
  table: string;
  figure: string;
}

interface Recipe {
  epochs: number;
  batchSize: number;
  seed: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  milestoneFractions: number[];
  padding: number;
}

const optionNames = ['train', 'test', 'outDir', 'depths', 'nets', 'epochs', 'seed', 'batchSize', 'device', 'onProgress', 'onLog'];

const netName = (family: 'plain' | 'resnet', depth: number) => `${family}${depth}`;

export async function runDegradation(options: DegradationOptions): Promise<DegradationReport> {
  v.knownKeys('runDegradation', v.plainObject('options', options), optionNames);
  const { train, test, onLog, onProgress } = options;
  if (typeof options.outDir !== 'string' || options.outDir === '') throw v.invalid('non-empty path', 'outDir', options.outDir);
  const depths = (options.depths ?? [20, 56]).map((d, i) => {
    if (!(degradationDepths as readonly unknown[]).includes(d)) throw v.invalid(`one of ${degradationDepths.join(', ')}`, `depths[${i}]`, d);
    return d as Depth;
  });
  if (depths.length === 0 || new Set(depths).size !== depths.length) throw v.invalid('distinct depths', 'depths', options.depths);
  const all = depths.flatMap((d) => [netName('plain', d), netName('resnet', d)]);
  if (options.nets !== undefined && (!Array.isArray(options.nets) || options.nets.length === 0)) throw v.invalid('non-empty array of net names', 'nets', options.nets);
  const chosen = options.nets ?? all;
  for (const net of chosen) {
    if (!all.includes(net)) throw new InvalidArgumentError(`Expected nets among ${all.join(', ')} (from depths ${depths.join(', ')}) but received '${net}'`);
  }
  const recipe: Recipe = {
    epochs: v.positiveInteger('epochs', options.epochs ?? 5),
    batchSize: v.positiveInteger('batchSize', options.batchSize ?? 128),
    seed: v.nonNegativeInteger('seed', options.seed ?? 0),
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 1e-4,
    milestoneFractions: [0.5, 0.75],
    padding: 4,
  };
  const device = v.device('device', options.device ?? 'cpu');
  await mkdir(options.outDir, { recursive: true });

  for (const net of all.filter((n) => chosen.includes(n))) {
    const dir = join(options.outDir, net);
    if (await readJson(join(dir, 'result.json'))) {
      onLog?.(`${net}: done already (${join(dir, 'result.json')})`);
      continue;
    }
    await trainNet(net, dir, recipe, train, test, device, onLog, onProgress);
  }
  return summarize(options.outDir, all, depths);
}

async function trainNet(
  net: string,
  dir: string,
  recipe: Recipe,
  train: ImageDataset,
  test: ImageDataset,
  device: string,
  onLog: DegradationOptions['onLog'],
  onProgress: DegradationOptions['onProgress'],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A folder trained with another recipe cannot be resumed with this one (the schedule would differ).
  const recorded = (await readJson(join(dir, 'recipe.json'))) as Recipe | undefined;
  if (recorded && JSON.stringify(recorded) !== JSON.stringify(recipe)) {
    throw new InvalidArgumentError(
      `'${dir}' holds a run with another recipe (${JSON.stringify(recorded)}); expected ${JSON.stringify(recipe)}. Use another outDir or the recorded options`,
    );
  }
  if (!recorded) await writeJsonAtomic(join(dir, 'recipe.json'), recipe);

  const family = net.startsWith('plain') ? 'plain' : 'resnet';
  const depth = Number(net.slice(family.length));
  const [channels] = train.imageShape;
  const model = await createModel(`resnet${depth}` as 'resnet20', { numClasses: train.classes.length, inChannels: channels, seed: recipe.seed, plain: family === 'plain', device });
  try {
    const perEpoch = Math.floor(train.length / recipe.batchSize);
    const total = recipe.epochs * perEpoch;
    const trainer = model.trainer({
      optimizer: { type: 'sgd', lr: recipe.lr, momentum: recipe.momentum, weightDecay: recipe.weightDecay },
      schedule: { type: 'multistep', milestones: recipe.milestoneFractions.map((f) => Math.round(f * total)), gamma: 0.1 },
    });
    const checkpoint = await latestCheckpoint(dir);
    if (checkpoint) {
      const { iteration } = await loadCheckpoint(checkpoint, model, trainer);
      onLog?.(`${net}: resuming from ${checkpoint} (iteration ${iteration} of ${total})`);
    } else {
      onLog?.(`${net}: ${model.numParameters().toLocaleString('en-US')} parameters, ${recipe.epochs} epochs of ${perEpoch} iterations`);
    }
    await fit(model, {
      train,
      val: test,
      epochs: recipe.epochs,
      batchSize: recipe.batchSize,
      trainer,
      seed: recipe.seed,
      augment: { crop: { padding: recipe.padding }, hflip: true },
      checkpointDir: dir,
      metricsFile: join(dir, 'metrics.jsonl'),
      runInfo: { experiment: 'degradation', family, depth, recipe },
      ...(onProgress && { onProgress: (p: FitProgress) => onProgress(net, p) }),
      onEpochEnd: (e) => onLog?.(`${net}: epoch ${e.epoch + 1}: train error ${(100 * (1 - e.trainAccuracy)).toFixed(2)}%, test error ${(100 * (1 - e.val!.top1)).toFixed(2)}%, ${e.seconds.toFixed(0)} s`),
    });
    const epochs = (await readMetrics(join(dir, 'metrics.jsonl'))).filter((r) => r.type === 'epoch');
    const last = epochs.at(-1)!;
    const trainEval = await evaluate(model, train, { batchSize: 256 });
    const result: NetResult = {
      net,
      family,
      depth,
      numParameters: model.numParameters(),
      epochs: last.epoch,
      iterations: last.iteration,
      trainError: last.trainError,
      trainEvalError: 1 - trainEval.top1,
      testError: last.testError!,
      seconds: epochs.reduce((s, r) => s + r.seconds, 0),
    };
    await writeJsonAtomic(join(dir, 'result.json'), result);
    onLog?.(`${net}: done: test error ${(100 * result.testError).toFixed(2)}%, ${result.seconds.toFixed(0)} s of training`);
  } finally {
    model.dispose();
  }
}

/** Writes the table and the figure from the finished nets. */
async function summarize(outDir: string, all: string[], depths: number[]): Promise<DegradationReport> {
  const results: NetResult[] = [];
  const runs: CurveRun[] = [];
  for (const net of all) {
    const result = (await readJson(join(outDir, net, 'result.json'))) as NetResult | undefined;
    if (!result) continue;
    results.push(result);
    runs.push({
      label: net,
      records: await readMetrics(join(outDir, net, 'metrics.jsonl')),
      colour: `${result.depth}-layer`,
      panel: result.family === 'plain' ? 'plain' : 'ResNet',
    });
  }
  const pending = all.filter((n) => !results.some((r) => r.net === n));
  const table = join(outDir, 'results.md');
  const figure = join(outDir, 'degradation.svg');
  await writeJsonAtomic(join(outDir, 'results.json'), { results, pending });
  await writeFileAtomic(table, resultsTable(results, depths));
  if (runs.length > 0) await writeFileAtomic(figure, await plotCurves(runs, { title: 'Degradation: plain nets vs ResNets' }));
  return { results, pending, table, figure };
}

/** The results as a Markdown table, with the paper's two comparisons stated per depth pair. */
export function resultsTable(results: NetResult[], depths: number[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const lines = [
    '| net | parameters | epochs | iterations | train error (last epoch, augmented) | train error (eval mode) | test error | training time |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(`| ${r.net} | ${r.numParameters.toLocaleString('en-US')} | ${r.epochs} | ${r.iterations} | ${pct(r.trainError)} | ${pct(r.trainEvalError)} | ${pct(r.testError)} | ${r.seconds.toFixed(0)} s |`);
  }
  const byName = new Map(results.map((r) => [r.net, r]));
  const shallow = Math.min(...depths);
  const comparisons: string[] = [];
  for (const deep of depths.filter((d) => d !== shallow)) {
    for (const [family, wanted] of [['plain', 'worse'], ['resnet', 'better']] as const) {
      const a = byName.get(netName(family, shallow));
      const b = byName.get(netName(family, deep));
      if (!a || !b) continue;
      const say = (key: 'trainError' | 'trainEvalError' | 'testError') => {
        const deeperWorse = b[key] > a[key];
        const holds = wanted === 'worse' ? deeperWorse : b[key] < a[key];
        return `${holds ? 'holds' : 'does not hold'} (${pct(b[key])} vs ${pct(a[key])})`;
      };
      comparisons.push(
        `- ${family}${deep} ${wanted} than ${family}${shallow} (the paper's ${family === 'plain' ? 'degradation' : 'residual gain'}): ` +
          `training error ${say('trainError')}, eval-mode training error ${say('trainEvalError')}, test error ${say('testError')}.`,
      );
    }
  }
  return `${lines.join('\n')}\n${comparisons.length ? `\n${comparisons.join('\n')}\n` : ''}`;
}

async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const epochs = (await readdir(dir))
    .map((f) => /^checkpoint-(\d+)\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  return epochs.length ? join(dir, `checkpoint-${Math.max(...epochs)}.safetensors`) : undefined;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidArgumentError(`cannot use '${path}': ${(error as Error).message}`);
  }
}

const writeJsonAtomic = (path: string, value: unknown) => writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
