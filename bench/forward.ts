// Forward-pass benchmark: ours beside Python PyTorch (eager) on the same machine, in the same
// run, with the same thread count. Warm-up runs are excluded; medians are reported.
//   npm run bench -- [--arch resnet50] [--batches 1,8] [--runs 10] [--threads N]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { createModel, getNumThreads, libtorchVersion, setNumThreads, Tensor, type ArchitectureName } from '../lib/index.ts';
import { median, runPython, timeRuns, writeResult } from './util.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'resnet50' },
    batches: { type: 'string', default: '1,8' },
    size: { type: 'string', default: '224' },
    runs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string' },
  },
});
const arch = values.arch as ArchitectureName;
const size = Number(values.size);
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (values.threads) setNumThreads(Number(values.threads));
const threads = getNumThreads();

interface Row { runtime: string; arch: string; batch: number; threads: number; medianMs: number; imagesPerSecond: number; timesMs: number[] }
const rows: Row[] = [];

const model = await createModel(arch, { seed: 0 });
for (const batch of values.batches.split(',').map(Number)) {
  const x = new Tensor(Float32Array.from({ length: batch * 3 * size * size }, () => Math.random() * 2 - 1), [batch, 3, size, size]);
  const times = await timeRuns(() => model.forward(x), runs, warmup);
  rows.push({ runtime: 'libtorch-resnet', arch, batch, threads, medianMs: median(times), imagesPerSecond: (batch * 1000) / median(times), timesMs: times });

  const py = runPython<{ times_ms: number[]; threads: number }>('bench/torch_forward.py', ['--arch', arch, '--batch', String(batch), '--size', String(size), '--threads', String(threads), '--warmup', String(warmup), '--runs', String(runs)]);
  rows.push({ runtime: 'pytorch-eager', arch, batch, threads: py.threads, medianMs: median(py.times_ms), imagesPerSecond: (batch * 1000) / median(py.times_ms), timesMs: py.times_ms });
}
model.dispose();

console.log(`${arch} forward, ${size}x${size}, LibTorch ${libtorchVersion()}, ${cpus()[0]?.model ?? 'cpu'}, ${threads} threads, median of ${runs} runs after ${warmup} warm-up`);
console.log('| runtime | batch | median ms | images/s | ours vs it |');
console.log('|---|---|---|---|---|');
for (const row of rows) {
  const ours = rows.find((r) => r.runtime === 'libtorch-resnet' && r.batch === row.batch)!;
  console.log(`| ${row.runtime} | ${row.batch} | ${row.medianMs.toFixed(1)} | ${row.imagesPerSecond.toFixed(2)} | ${(ours.imagesPerSecond / row.imagesPerSecond).toFixed(2)}x |`);
}
writeResult('forward', { rows });
