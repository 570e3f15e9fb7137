// Training curves: the metrics file fit() writes (and trims on resume), the SVG plot, the
// degradation experiment run in stages, and the CLI commands around them.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { appendFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  createResNet,
  DataError,
  fit,
  ImageDataset,
  InvalidArgumentError,
  loadCheckpoint,
  parseMetrics,
  plotCurves,
  readMetrics,
  resultsTable,
  runDegradation,
  type MetricsRecord,
  type NetResult,
  type TrainerOptions,
} from '../lib/index.ts';
import { tempDir, writeIdx } from './helpers/data-files.ts';

/** n random 1xSxS images in 4 classes whose class shifts the brightness (learnable). */
function tinyDataset(n = 128, size = 12): ImageDataset {
  const pixels = new Uint8Array(n * size * size);
  const labels: number[] = [];
  let state = 3;
  for (let i = 0; i < n; i++) {
    labels.push(i % 4);
    for (let p = 0; p < size * size; p++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      pixels[i * size * size + p] = Math.min(255, (i % 4) * 50 + (state >>> 26));
    }
  }
  return new ImageDataset({ pixels, shape: [n, 1, size, size], labels, classes: ['a', 'b', 'c', 'd'] });
}

const small = (seed: number) => createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 4, inChannels: 1, seed });
const options: TrainerOptions = { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4 }, schedule: { type: 'multistep', milestones: [10, 14] } };
const augment = { crop: { padding: 2 }, hflip: true };
/** The records without the fields that measure time, which differ between runs. */
const timeless = (records: MetricsRecord[]) => records.map((r) => ({ ...r, imagesPerSecond: 0, seconds: 0 }));

test('fit() writes the run, iteration and epoch records', async (t) => {
  const dir = await tempDir(t, 'curves-');
  const data = tinyDataset();
  const model = await small(1);
  const file = join(dir, 'run', 'metrics.jsonl');
  await fit(model, { train: data, val: data, epochs: 2, batchSize: 32, trainer: model.trainer(options), metricsFile: file, metricsEvery: 3, runInfo: { dataset: 'tiny' } });
  const records = await readMetrics(file);
  t.deepEqual(records.map((r) => `${r.type}${r.type === 'run' ? '' : r.iteration}`), ['run', 'iteration3', 'epoch4', 'iteration6', 'epoch8']);
  const run = records[0]!;
  t.like(run, { type: 'run', arch: 'resnet', batchSize: 32, epochs: 2, iterationsPerEpoch: 4, seed: 0, dataset: 'tiny' });
  t.is(run.type === 'run' && run.numParameters, model.numParameters());
  for (const r of records) {
    if (r.type === 'run') continue;
    t.true(r.trainError >= 0 && r.trainError <= 1 && r.trainLoss > 0 && r.imagesPerSecond > 0, JSON.stringify(r));
    if (r.type === 'epoch') t.true(r.testError! >= 0 && r.testError! <= 1 && r.testLoss! > 0 && r.seconds > 0, JSON.stringify(r));
  }
  // The first window holds iterations 1-3 at lr 0.05; the epoch record has the last step's lr.
  t.like(records[1], { epoch: 0, lr: 0.05 });
  t.like(records[4], { epoch: 2, lr: 0.05 });
  model.dispose();
});

// Serial: a resumed run equals an uninterrupted one only with the same thread count at every step.
test.serial('a resumed run\'s metrics file reads as the uninterrupted run\'s', async (t) => {
  const dir = await tempDir(t, 'curves-');
  const data = tinyDataset();
  const straight = await small(2);
  await fit(straight, { train: data, val: data, epochs: 4, batchSize: 32, trainer: straight.trainer(options), seed: 5, augment, metricsFile: join(dir, 'straight.jsonl'), metricsEvery: 3 });
  straight.dispose();

  const first = await small(2);
  const file = join(dir, 'resumed.jsonl');
  await fit(first, { train: data, val: data, epochs: 2, batchSize: 32, trainer: first.trainer(options), seed: 5, augment, metricsFile: file, metricsEvery: 3, checkpointDir: dir });
  first.dispose();
  // A process killed after its last checkpoint wrote a record past it and half a line.
  await appendFile(file, `${JSON.stringify({ type: 'iteration', epoch: 2, iteration: 9, trainLoss: 9, trainError: 0.9, lr: 1, imagesPerSecond: 1 })}\n{"type":"itera`);

  const resumed = await small(99);
  const trainer = resumed.trainer(options);
  await loadCheckpoint(join(dir, 'checkpoint-2.safetensors'), resumed, trainer);
  await fit(resumed, { train: data, val: data, epochs: 4, batchSize: 32, trainer, seed: 5, augment, metricsFile: file, metricsEvery: 3 });
  resumed.dispose();
  t.deepEqual(timeless(await readMetrics(file)), timeless(await readMetrics(join(dir, 'straight.jsonl'))));
});

test('a damaged metrics file is a DataError naming the file and line', async (t) => {
  const good = '{"type":"run","arch":"resnet20"}\n{"type":"epoch","iteration":5,"epoch":1}\n';
  t.is(parseMetrics(`${good}{"type":"epo`, 'm.jsonl').length, 2); // a partial last line is a killed writer's
  const bad = t.throws(() => parseMetrics(`${good}not json\n{"type":"epoch","iteration":9}\n`, 'm.jsonl'), { instanceOf: DataError });
  t.regex(bad.message, /^m\.jsonl:3: expected a JSON record, got 'not json'/);
  t.throws(() => parseMetrics('{"type":"step","iteration":1}\n', 'm.jsonl'), { instanceOf: DataError, message: /m\.jsonl:1: expected a record of type 'run', 'iteration' or 'epoch', got "step"/ });
  t.throws(() => parseMetrics('{"type":"epoch"}\n', 'm.jsonl'), { instanceOf: DataError, message: /numeric 'iteration'/ });
  await t.throwsAsync(readMetrics('/nonexistent/metrics.jsonl'), { instanceOf: DataError, message: /cannot read the metrics file '\/nonexistent\/metrics.jsonl' \(ENOENT\)/ });
});

/** Iteration and epoch records of a made-up run whose errors fall with the iterations. */
function syntheticRun(arch: string, start: number, withTest = true): MetricsRecord[] {
  const records: MetricsRecord[] = [{ type: 'run', arch, numParameters: 1, batchSize: 128, epochs: 3, iterationsPerEpoch: 100, seed: 0 }];
  for (let epoch = 0; epoch < 3; epoch++) {
    for (let k = 1; k <= 4; k++) {
      const iteration = epoch * 100 + k * 25;
      records.push({ type: 'iteration', epoch, iteration, trainLoss: 1, trainError: (start - iteration / 50) / 100, lr: 0.1, imagesPerSecond: 500 });
    }
    records.push({ type: 'epoch', epoch: epoch + 1, iteration: (epoch + 1) * 100, trainLoss: 1, trainError: 0.1, ...(withTest && { testError: (start + 3 - epoch) / 100 }), lr: 0.1, imagesPerSecond: 500, seconds: 1 });
  }
  return records;
}

/** The chart's line paths, grouped by the mark they belong to, and its texts. */
function chartParts(svg: string): { lines: string[]; texts: string[] } {
  t_valid(svg);
  const lines = [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*>(.*?)<\/g>/g)].flatMap((m) => [...m[1]!.matchAll(/<path [^>]*d="(M[^"]+)"/g)].map((p) => p[1]!));
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
  return { lines, texts };
}
function t_valid(svg: string): void {
  const valid = XMLValidator.validate(svg);
  if (valid !== true) throw new Error(`the SVG does not parse: ${JSON.stringify(valid)}`);
}

test('the plot is an SVG with one line per series and labelled axes', async (t) => {
  const svg = await plotCurves(
    [
      { label: 'plain20', records: syntheticRun('plain20', 20) },
      { label: 'resnet20', records: syntheticRun('resnet20', 16) },
      { label: 'resnet56', records: syntheticRun('resnet56', 14, false) }, // no test set: one series
    ],
    { title: 'curves' },
  );
  t.is(XMLValidator.validate(svg), true);
  const root = new XMLParser({ ignoreAttributes: false }).parse(svg).svg;
  t.truthy(root['@_width'] && root['@_height']);
  const { lines, texts } = chartParts(svg);
  t.is(lines.length, 5);
  for (const label of ['iterations', 'error (%)', 'curves', 'plain20', 'resnet20', 'resnet56', 'dashed: training error, bold: test error']) t.true(texts.includes(label), label);
  // Training curves are dashed and thin, test curves solid and bold.
  const dashed = svg.match(/<path [^>]*stroke-dasharray="5,3"/g) ?? [];
  t.is(dashed.length, 3);
  t.is((svg.match(/<path [^>]*stroke-width="2.5"/g) ?? []).length, 2);
});

test('panels: one per family, colours shared by depth', async (t) => {
  const svg = await plotCurves([
    { label: 'plain20', records: syntheticRun('plain20', 20), panel: 'plain', colour: '20-layer' },
    { label: 'plain56', records: syntheticRun('plain56', 24), panel: 'plain', colour: '56-layer' },
    { label: 'resnet20', records: syntheticRun('resnet20', 16), panel: 'ResNet', colour: '20-layer' },
    { label: 'resnet56', records: syntheticRun('resnet56', 14), panel: 'ResNet', colour: '56-layer' },
  ]);
  const { lines, texts } = chartParts(svg);
  t.is(lines.length, 8);
  for (const label of ['plain', 'ResNet', '20-layer', '56-layer']) t.true(texts.includes(label), label);
  t.is(texts.filter((x) => x === 'iterations').length, 2);
  await t.throwsAsync(plotCurves([{ label: 'empty', records: [] }]), { instanceOf: InvalidArgumentError, message: /at least one iteration or epoch record/ });
});

test.serial('the degradation experiment runs in stages and resumes an interrupted net exactly', async (t) => {
  const outDir = await tempDir(t, 'degradation-');
  const train = tinyDataset(96);
  const testSet = tinyDataset(32);
  const logs: string[] = [];
  const base = { train, test: testSet, outDir, depths: [20], epochs: 2, batchSize: 32, onLog: (m: string) => logs.push(m) };

  const stage1 = await runDegradation({ ...base, nets: ['plain20'] });
  t.deepEqual(stage1.results.map((r) => r.net), ['plain20']);
  t.deepEqual(stage1.pending, ['resnet20']);
  const table1 = await readFile(stage1.table, 'utf8');
  t.regex(table1, /\| plain20 \| [\d,]+ \| 2 \| 6 \|/);

  const stage2 = await runDegradation(base);
  t.true(logs.some((m) => /^plain20: done already/.test(m)));
  t.deepEqual(stage2.results.map((r) => r.net), ['plain20', 'resnet20']);
  const table = await readFile(stage2.table, 'utf8');
  t.regex(table, /\| plain20 \|.*\n\| resnet20 \|/);
  t_valid(await readFile(stage2.figure, 'utf8'));
  t.is(chartParts(await readFile(stage2.figure, 'utf8')).lines.length, 4);
  const finished = JSON.parse(await readFile(join(outDir, 'resnet20', 'result.json'), 'utf8')) as NetResult;
  t.like(finished, { net: 'resnet20', family: 'resnet', depth: 20, epochs: 2, iterations: 6 });

  // Interrupted after its first epoch: no result, no second checkpoint, a metrics file that ran on.
  await rm(join(outDir, 'resnet20', 'result.json'));
  await rm(join(outDir, 'resnet20', 'checkpoint-2.safetensors'));
  const stage3 = await runDegradation({ ...base, nets: ['resnet20'] });
  t.true(logs.some((m) => m.startsWith(`resnet20: resuming from ${join(outDir, 'resnet20', 'checkpoint-1.safetensors')} (iteration 3 of 6)`)));
  const again = stage3.results.find((r) => r.net === 'resnet20')!;
  for (const key of ['trainError', 'trainEvalError', 'testError', 'iterations'] as const) t.is(again[key], finished[key], key);
  const epochs = (await readMetrics(join(outDir, 'resnet20', 'metrics.jsonl'))).filter((r) => r.type === 'epoch');
  t.deepEqual(epochs.map((r) => r.epoch), [1, 2]);

});

test('the degradation experiment refuses another recipe in a started folder, and bad options', async (t) => {
  const outDir = await tempDir(t, 'degradation-');
  const train = tinyDataset(64);
  const base = { train, test: train, outDir, depths: [20], batchSize: 32 };
  await runDegradation({ ...base, epochs: 1, nets: ['plain20'] });
  await rm(join(outDir, 'plain20', 'result.json')); // unfinished, as far as the experiment knows
  await t.throwsAsync(runDegradation({ ...base, epochs: 2, nets: ['plain20'] }), { instanceOf: InvalidArgumentError, message: /holds a run with another recipe .*"epochs":1/ });
  await t.throwsAsync(runDegradation({ ...base, nets: ['plain21'] }), { instanceOf: InvalidArgumentError, message: /Expected nets among plain20, resnet20 \(from depths 20\) but received 'plain21'/ });
  await t.throwsAsync(runDegradation({ ...base, depths: [21] }), { instanceOf: InvalidArgumentError, message: /depths\[0\]/ });
  await t.throwsAsync(runDegradation({ ...base, depths: [20, 20] }), { instanceOf: InvalidArgumentError, message: /distinct depths/ });
});

test('the results table states whether the paper\'s ordering holds, in each error', (t) => {
  const net = (name: string, trainError: number, trainEvalError: number, testError: number): NetResult => ({
    net: name, family: name.startsWith('plain') ? 'plain' : 'resnet', depth: Number(name.replace(/\D+/, '')), numParameters: 1000, epochs: 5, iterations: 2340,
    trainError, trainEvalError, testError, seconds: 60,
  });
  const table = resultsTable([net('plain20', 0.1, 0.08, 0.12), net('resnet20', 0.09, 0.07, 0.11), net('plain56', 0.15, 0.12, 0.11), net('resnet56', 0.08, 0.06, 0.115)], [20, 56]);
  t.regex(table, /\| plain56 \| 1,000 \| 5 \| 2340 \| 15\.00% \| 12\.00% \| 11\.00% \| 60 s \|/);
  t.true(table.includes('- plain56 worse than plain20 (the paper\'s degradation): training error holds (15.00% vs 10.00%), eval-mode training error holds (12.00% vs 8.00%), test error does not hold (11.00% vs 12.00%).'));
  t.true(table.includes('- resnet56 better than resnet20 (the paper\'s residual gain): training error holds (8.00% vs 9.00%), eval-mode training error holds (6.00% vs 7.00%), test error does not hold (11.50% vs 11.00%).'));
});

const cli = (args: string[]) => spawnSync(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });

test('resnet train --run-dir --plot writes the metrics and the plot; resnet eval scores the weights; resnet plot draws run folders', async (t) => {
  const root = await tempDir(t, 'curves-cli-');
  const images = (n: number) => Uint8Array.from({ length: n * 28 * 28 }, (_, i) => (i * 7) & 255);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  await writeIdx(join(root, 'train-images-idx3-ubyte'), [40, 28, 28], images(40));
  await writeIdx(join(root, 'train-labels-idx1-ubyte'), [40], labels(40));
  await writeIdx(join(root, 't10k-images-idx3-ubyte'), [20, 28, 28], images(20));
  await writeIdx(join(root, 't10k-labels-idx1-ubyte'), [20], labels(20));
  const runDir = join(root, 'run');
  const trained = cli(['train', '--dataset', 'mnist', '--root', root, '--arch', 'resnet20', '--epochs', '2', '--batch-size', '16', '--run-dir', runDir, '--log-every', '1', '--plot', '--out', join(runDir, 'weights.safetensors'), '--json']);
  t.is(trained.status, 0, trained.stderr);
  const records = await readMetrics(join(runDir, 'metrics.jsonl'));
  t.deepEqual(records.map((r) => r.type), ['run', 'iteration', 'iteration', 'epoch', 'iteration', 'iteration', 'epoch']);
  t.like(records[0], { arch: 'resnet20', dataset: 'mnist' });
  t.true((await stat(join(runDir, 'checkpoint-2.safetensors'))).size > 0); // --run-dir also holds the checkpoints
  t.is(chartParts(await readFile(join(runDir, 'curves.svg'), 'utf8')).lines.length, 2);
  // resnet eval on the saved weights, plain and with flip test-time augmentation.
  const evaluated = ['none', 'hflip'].map((tta) => cli(['eval', '--dataset', 'mnist', '--root', root, '--weights', join(runDir, 'weights.safetensors'), '--tta', tta, '--json']));
  for (const [i, run] of evaluated.entries()) {
    t.is(run.status, 0, run.stderr);
    t.like(JSON.parse(run.stdout), { arch: 'resnet20', dataset: 'mnist', tta: ['none', 'hflip'][i], count: 20 });
  }
  t.not(JSON.parse(evaluated[0]!.stdout).loss, JSON.parse(evaluated[1]!.stdout).loss);
  const badTta = cli(['eval', '--dataset', 'mnist', '--root', root, '--weights', join(runDir, 'weights.safetensors'), '--tta', 'five-crop']);
  t.is(badTta.status, 2);
  t.regex(badTta.stderr, /--tta takes none or hflip, not 'five-crop'/);

  const out = join(root, 'both.svg');
  await writeFile(join(root, 'other.jsonl'), syntheticRun('plain20', 20).map((r) => JSON.stringify(r)).join('\n'));
  const plotted = cli(['plot', runDir, join(root, 'other.jsonl'), '-o', out, '--title', 'two runs']);
  t.is(plotted.status, 0, plotted.stderr);
  const { lines, texts } = chartParts(await readFile(out, 'utf8'));
  t.is(lines.length, 4);
  t.true(texts.includes('two runs') && texts.includes('resnet20') && texts.includes('plain20'));

  const noOut = cli(['plot', runDir]);
  t.is(noOut.status, 2);
  t.regex(noOut.stderr, /plot needs -o FILE\.svg/);
  const noRun = cli(['plot', join(root, 'missing'), '-o', out, '--json']);
  t.is(noRun.status, 1);
  t.like(JSON.parse(noRun.stdout), { error: { code: 'ERR_RESNET_DATA' } });
  // Starting from weights, with the optimizer and regularisation flags.
  const tuned = cli(['train', '--dataset', 'mnist', '--root', root, '--arch', 'resnet20', '--epochs', '1', '--batch-size', '20', '--weights', join(runDir, 'weights.safetensors'),
    '--lr', '0.01', '--momentum', '0', '--weight-decay', '0', '--label-smoothing', '0.1', '--erasing', '0.5', '--run-dir', join(root, 'tuned'), '--json']);
  t.is(tuned.status, 0, tuned.stderr);
  t.like((await readMetrics(join(root, 'tuned', 'metrics.jsonl')))[0], { optimizer: { type: 'sgd', lr: 0.01, momentum: 0, weightDecay: 0, nesterov: false } });
  const badFlag = cli(['train', '--dataset', 'mnist', '--root', root, '--erasing=-1']);
  t.is(badFlag.status, 2);
  t.regex(badFlag.stderr, /--erasing expects a non-negative number, got '-1'/);
  // A training set smaller than the default batch of 128 trains with one batch of all of it.
  const small = cli(['train', '--dataset', 'mnist', '--root', root, '--arch', 'resnet20', '--epochs', '1', '--json']);
  t.is(small.status, 0, small.stderr);
  t.regex(small.stderr, /--batch-size 128 is more than the 40 training images; using 40/);
  const plotWithoutDir = cli(['train', '--dataset', 'mnist', '--root', root, '--plot']);
  t.is(plotWithoutDir.status, 2);
  t.regex(plotWithoutDir.stderr, /--plot needs --run-dir DIR/);
  // Names from the command line are looked up among own properties only (they used to find Object's).
  const inherited = cli(['constructor']);
  t.is(inherited.status, 2);
  t.regex(inherited.stderr, /unknown command 'constructor'/);
  const schedule = cli(['train', '--dataset', 'mnist', '--root', root, '--schedule', 'toString']);
  t.is(schedule.status, 2);
  t.regex(schedule.stderr, /unknown schedule 'toString'/);
  const badExperiment = cli(['experiment', 'degradaton', '--dataset', 'mnist', '--out-dir', root]);
  t.is(badExperiment.status, 2);
  t.regex(badExperiment.stderr, /expected 'experiment degradation', got 'experiment degradaton'/);
});
