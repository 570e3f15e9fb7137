// Training-step throughput: ours beside Python PyTorch on the same machine, same run, same
// threads: resnet20 on 1x28x28 at batch 128, resnet18 on 3x224x224 at batch 16. SGD with
// momentum and weight decay; medians after warm-up.
//   node --import=tsx bench/train.ts [--runs 10] [--warmup 2] [--threads 2]
import { parseArgs } from 'node:util';
import { getNumThreads, resnet18, resnet20, setNumThreads, Tensor } from '../lib/index.ts';
import { environment, gated, median, runPython, timeRunsGated, uptimeLine, writeResult } from './util.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' }, threads: { type: 'string', default: '2' } },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
setNumThreads(Number(values.threads));
const threads = getNumThreads();
const env = environment();
const loadBefore = uptimeLine();

const configs = [
  { model: 'resnet20', batch: 128, shape: [1, 28, 28], classes: 10, build: () => resnet20({ inChannels: 1, seed: 0 }) },
  { model: 'resnet18', batch: 16, shape: [3, 224, 224], classes: 1000, build: () => resnet18({ seed: 0 }) },
] as const;

const rows = [];
for (const c of configs) {
  const model = await c.build();
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } });
  const numel = c.batch * c.shape.reduce((a: number, b: number) => a * b, 1);
  const x = new Tensor(Float32Array.from({ length: numel }, () => Math.random() * 2 - 1), [c.batch, ...c.shape]);
  const y = Array.from({ length: c.batch }, (_, i) => i % c.classes);
  // Behind the quiet gate of bench/util.ts: a block disturbed by other work on the machine is run again.
  const oursRuns = await timeRunsGated(() => trainer.step(x, y), runs, warmup);
  const ours = median(oursRuns.timesMs);
  model.dispose();
  const py = await gated(
    async () => runPython<{ times_ms: number[]; others_cores: number | null }>('bench/torch_train.py', ['--model', c.model, '--batch', String(c.batch), '--threads', String(threads), '--runs', String(runs), '--warmup', String(warmup)]),
    (r) => r.others_cores,
  );
  const theirs = median(py.times_ms);
  rows.push({
    model: c.model, batch: c.batch, oursMs: ours, pytorchMs: theirs, oursImagesPerSecond: (c.batch * 1000) / ours, pytorchImagesPerSecond: (c.batch * 1000) / theirs,
    othersCores: { ours: oursRuns.othersCores, pytorch: py.others_cores }, disturbed: oursRuns.disturbed || py.disturbed,
  });
}

const loadAfter = uptimeLine();
console.log(`training step (SGD, momentum 0.9), ${threads} threads, median of ${runs} after ${warmup} warm-up; ${env.date}`);
console.log(`load before: ${loadBefore}\nload after:  ${loadAfter}\n`);
console.log('| model | batch | ours img/s | PyTorch img/s | ours / PyTorch | others (cores), ours / PyTorch |');
console.log('|---|---|---|---|---|---|');
const f2 = (x: number | null) => (x === null ? '?' : x.toFixed(2));
for (const r of rows) {
  console.log(`| ${r.model} | ${r.batch} | ${r.oursImagesPerSecond.toFixed(1)} | ${r.pytorchImagesPerSecond.toFixed(1)} | ${(r.oursImagesPerSecond / r.pytorchImagesPerSecond).toFixed(2)}x | ${f2(r.othersCores.ours)} / ${f2(r.othersCores.pytorch)}${r.disturbed ? ' (disturbed)' : ''} |`);
}
writeResult('train', { environment: env, loadBefore, loadAfter, threads, rows });
