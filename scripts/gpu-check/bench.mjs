// Our side of the benchmark, one row per process (so that nvidia-smi's peak belongs to that row:
// LibTorch's caching allocator keeps what earlier rows reserved, and our API has no empty_cache).
//   node bench.mjs --pkg DIR --plan plan.json --mode gpu|dry --row ID --out FILE.json
// Timing: performance.now() around `await model.forward(x)` / `await trainer.step(x, y)`, which
// resolve once the logits (or loss and correct count) are on the host: the input's copy to the
// device and the result's copy back are inside, as in bench_torch.py.
// Memory: peak of nvidia-smi's memory.used (whole device, MiB) sampled every 20 ms during the row,
// and the same reading taken before the addon loaded (the baseline: other processes, if any).
// On the CPU: this process's peak RSS.
// Event loop: perf_hooks.monitorEventLoopDelay (1 ms resolution) over the timed calls: how late
// the loop's timers ran while the GPU (or the CPU's executor thread) worked. What the main thread
// itself does per call (copying the input out of JavaScript) shows up here.
import { readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SmiPoller, hasNvidiaSmi, loadPackage, median, parseArgs, randomNormal, smiOnce } from './common.mjs';

const args = parseArgs();
const plan = JSON.parse(readFileSync(args.plan, 'utf8'))[args.mode ?? 'gpu'];
const row = plan.bench.find((r) => r.id === args.row);
if (!row) throw new Error(`no bench row ${args.row} in ${args.plan}`);
const device = plan.device;
const cuda = device.startsWith('cuda');
const smi = cuda && hasNvidiaSmi();
const baseline = smi ? smiOnce() : null; // before LibTorch initialises CUDA in this process
const poller = smi ? new SmiPoller().start() : null;

const result = { ...row, side: 'ours', smiBaselineMiB: baseline };
let model;
try {
  const pkg = await loadPackage(args.pkg);
  const { Tensor, createModel, runtime } = pkg;
  result.libtorch = runtime.libtorchVersion();
  const tSetup = performance.now();
  model = await createModel(row.arch, { device, precision: row.precision, memoryFormat: row.memoryFormat, seed: 0 });
  const { batch: b, size: s } = row;
  const x = new Tensor(randomNormal(b * 3 * s * s, 7), [b, 3, s, s]);
  let step;
  let last;
  if (row.kind === 'train') {
    const trainer = model.trainer({ optimizer: { type: 'sgd', lr: row.lr ?? 0.01, momentum: row.momentum ?? 0.9 } });
    const labels = new BigInt64Array(b);
    for (let i = 0; i < b; i++) labels[i] = BigInt((i * 7919) % 1000);
    step = () => trainer.step(x, labels);
  } else {
    step = () => model.forward(x);
  }
  result.setupSeconds = +((performance.now() - tSetup) / 1000).toFixed(2);
  for (let i = 0; i < row.warmup; i++) last = await step();
  const times = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = performance.now() + row.seconds * 1000;
  while (times.length < row.iters && (times.length < 3 || performance.now() < end)) {
    const t0 = performance.now();
    last = await step();
    times.push(performance.now() - t0);
  }
  loop.disable();
  result.eventLoopDelayMs = {
    p50: loop.percentile(50) / 1e6,
    p99: loop.percentile(99) / 1e6,
    max: loop.max / 1e6,
    samples: loop.count,
  };
  const med = median(times);
  Object.assign(result, {
    iterations: times.length,
    medianMs: med,
    minMs: Math.min(...times),
    imgPerSec: (b * 1000) / med,
  });
  if (row.kind === 'train') {
    result.lastLoss = last.loss;
    result.finite = Number.isFinite(last.loss);
  } else {
    result.finite = last.data.every(Number.isFinite);
  }
} catch (error) {
  result.error = String(error?.stack ?? error).split('\n').slice(0, 6).join('\n');
} finally {
  model?.dispose();
}
if (poller) {
  // one more sample after the last step, then stop
  await new Promise((r) => setTimeout(r, 60));
  result.peakSmiMiB = poller.stop();
  result.smiSamples = poller.samples;
  result.smiMode = poller.mode;
}
result.peakRssMiB = process.resourceUsage().maxRSS / 1024;
writeFileSync(args.out, JSON.stringify(result, null, 1));
const mem = cuda ? `nvidia-smi peak ${result.peakSmiMiB ?? '-'} MiB (baseline ${baseline ?? '-'}, ${result.smiSamples ?? 0} samples)` : `peak RSS ${result.peakRssMiB.toFixed(0)} MiB`;
console.log(
  result.error
    ? `  ours  ${row.id}: ERROR ${result.error}`
    : `  ours  ${row.id}: ${result.imgPerSec.toFixed(1)} img/s (median ${result.medianMs.toFixed(2)} ms of ${result.iterations}), ${mem}, event loop delay p99 ${result.eventLoopDelayMs.p99.toFixed(2)} ms (max ${result.eventLoopDelayMs.max.toFixed(2)})`,
);
process.exitCode = result.error ? 1 : 0;
