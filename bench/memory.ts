// Memory over time: does the resident set grow with the number of calls?
//
//   node --import=tsx bench/memory.ts [--forwards 2000] [--size 224] [--steps 300] [--train-batch 32]
//        [--gc-every N] [--skip-python]
//
// 1. `forwards` eval-mode forwards of resnet18 at batch 1 (size x size, default 224x224: about
//    30 ms each on 2 cores, so 2,000 take about a minute), RSS after the 100th and the last, and
//    the growth between them in %. Each forward's result is dropped at once, as a server would.
// 2. `steps` SGD training steps of resnet20 (1x28x28, batch 32, 10 classes), RSS after step 50
//    and after the last.
// RSS is sampled every 100 forwards / 25 steps (series in bench/results/memory.json) together
// with V8's heap and external memory. After each loop the script also forces a garbage collection
// and samples again: growth that a collection takes back was result tensors waiting for the
// collector, not a leak. `--gc-every N` forces a collection every N forwards (to tell memory
// that waits for the collector from memory that is really held). Unless --skip-python, the same
// forward loop runs in Python PyTorch (eager, bench/torch_memory.py) for reference. The glibc
// allocator matters here: MALLOC_ARENA_MAX, when set, is recorded with the result.
import { PerformanceObserver } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { parseArgs } from 'node:util';
import { resnet18, resnet20, setNumThreads, Tensor } from '../lib/index.ts';
import { environment, markdownTable, median, randn, rssMiB, runPython, uptimeLine, writeResult } from './util.ts';

const { values } = parseArgs({
  options: {
    forwards: { type: 'string', default: '2000' },
    size: { type: 'string', default: '224' },
    steps: { type: 'string', default: '300' },
    'train-batch': { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    'gc-every': { type: 'string', default: '0' },
    'skip-python': { type: 'boolean', default: false },
    out: { type: 'string', default: 'memory' },
  },
});
const forwards = Number(values.forwards);
const size = Number(values.size);
const steps = Number(values.steps);
const trainBatch = Number(values['train-batch']);
const gcEvery = Number(values['gc-every']);
setNumThreads(Number(values.threads));
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// V8's garbage collections, counted, so that RSS can be read against them.
let gcCount = 0;
new PerformanceObserver((list) => { gcCount += list.getEntries().length; }).observe({ entryTypes: ['gc'] });
const mib = (x: number) => x / (1 << 20);
const sample = (i: number) => {
  const m = process.memoryUsage();
  return { i, gcs: gcCount, rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) };
};
const growth = (from: number, to: number) => ((to - from) / from) * 100;
const env = environment();
const loadBefore = uptimeLine();
console.error(`memory benchmark; ${loadBefore}`);
const rssAtStart = rssMiB();

// 1. Forwards.
const model = await resnet18({ seed: 0 });
await model.eval();
const x = new Tensor(randn(3 * size * size, 1), [1, 3, size, size]);
const forwardSeries = [sample(0)];
const times: number[] = [];
const t0 = performance.now();
for (let i = 1; i <= forwards; i++) {
  const start = performance.now();
  await model.forward(x);
  times.push(performance.now() - start);
  if (gcEvery > 0 && i % gcEvery === 0) gc();
  if (i % 100 === 0 || i === forwards) forwardSeries.push(sample(i));
  if (i % 500 === 0) console.error(`  forward ${i}/${forwards}: RSS ${rssMiB().toFixed(1)} MiB`);
}
const forwardSeconds = (performance.now() - t0) / 1000;
gc();
const forwardAfterGc = sample(forwards);
model.dispose();
const at = (series: { i: number; rssMiB: number }[], i: number) => series.find((s) => s.i === i)!.rssMiB;
const rss100 = at(forwardSeries, 100);
const rssLast = at(forwardSeries, forwards);

// 2. Training steps.
const net = await resnet20({ inChannels: 1, seed: 0 });
const trainer = net.trainer({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } });
const batches = Array.from({ length: 8 }, (_, k) => ({
  images: new Tensor(randn(trainBatch * 28 * 28, 100 + k), [trainBatch, 1, 28, 28]),
  labels: Array.from({ length: trainBatch }, (_, i) => (i + k) % 10),
}));
const trainSeries = [sample(0)];
const stepTimes: number[] = [];
const t1 = performance.now();
for (let step = 1; step <= steps; step++) {
  const b = batches[step % batches.length]!;
  const start = performance.now();
  await trainer.step(b.images, b.labels);
  stepTimes.push(performance.now() - start);
  if (step % 25 === 0 || step === steps) trainSeries.push(sample(step));
}
const trainSeconds = (performance.now() - t1) / 1000;
gc();
const trainAfterGc = sample(steps);
net.dispose();
const rss50 = at(trainSeries, 50);
const rssEnd = at(trainSeries, steps);

// 3. The same forward loop in Python PyTorch, for reference.
let pythonForward: { forwards: number; median_ms: number; series: { i: number; rss_mib: number }[] } | null = null;
if (!values['skip-python']) {
  pythonForward = runPython('bench/torch_memory.py', ['--forwards', String(forwards), '--size', String(size), '--threads', values.threads]);
}
const py100 = pythonForward?.series.find((s) => s.i === 100)?.rss_mib;
const pyEnd = pythonForward?.series.find((s) => s.i === forwards)?.rss_mib;
const loadAfter = uptimeLine();

const result = {
  environment: env, loadBefore, loadAfter, rssAtStartMiB: rssAtStart, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
  forward: {
    model: 'resnet18', batch: 1, size, forwards, gcEvery, seconds: forwardSeconds, medianMs: median(times),
    rssAt100MiB: rss100, rssAtEndMiB: rssLast, growthPercent: growth(rss100, rssLast),
    afterGc: forwardAfterGc, growthAfterGcPercent: growth(rss100, forwardAfterGc.rssMiB), series: forwardSeries,
  },
  train: {
    model: 'resnet20', input: [1, 28, 28], batch: trainBatch, steps, seconds: trainSeconds, medianStepMs: median(stepTimes),
    rssAt50MiB: rss50, rssAtEndMiB: rssEnd, growthPercent: growth(rss50, rssEnd),
    afterGc: trainAfterGc, growthAfterGcPercent: growth(rss50, trainAfterGc.rssMiB), series: trainSeries,
  },
  pytorchForward: pythonForward && py100 !== undefined && pyEnd !== undefined
    ? { ...pythonForward, rssAt100MiB: py100, rssAtEndMiB: pyEnd, growthPercent: growth(py100, pyEnd) }
    : null,
};

console.log(`\nMemory (RSS of the whole process), ${env.date}; forced GC every ${gcEvery || 'never'}; MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}`);
console.log(`load before: ${loadBefore}\nload after:  ${loadAfter}\n`);
console.log(markdownTable(
  ['loop (ours unless said)', 'calls', 'median ms/call', 'RSS at the reference call', 'RSS at the end', 'growth', 'RSS after a forced GC', 'growth after GC'],
  [
    [`resnet18 forward, batch 1, ${size}×${size}`, forwards, median(times).toFixed(1), `${rss100.toFixed(1)} MiB (call 100)`, `${rssLast.toFixed(1)} MiB`,
      `${growth(rss100, rssLast).toFixed(2)} %`, `${forwardAfterGc.rssMiB.toFixed(1)} MiB`, `${growth(rss100, forwardAfterGc.rssMiB).toFixed(2)} %`],
    ...(pythonForward && py100 !== undefined && pyEnd !== undefined
      ? [[`PyTorch eager (Python), same forward loop`, forwards, pythonForward.median_ms.toFixed(1), `${py100.toFixed(1)} MiB (call 100)`, `${pyEnd.toFixed(1)} MiB`,
        `${growth(py100, pyEnd).toFixed(2)} %`, '–', '–']]
      : []),
    [`resnet20 SGD step, batch ${trainBatch}, 1×28×28`, steps, median(stepTimes).toFixed(1), `${rss50.toFixed(1)} MiB (step 50)`, `${rssEnd.toFixed(1)} MiB`,
      `${growth(rss50, rssEnd).toFixed(2)} %`, `${trainAfterGc.rssMiB.toFixed(1)} MiB`, `${growth(rss50, trainAfterGc.rssMiB).toFixed(2)} %`],
  ],
));
writeResult(values.out, result);
