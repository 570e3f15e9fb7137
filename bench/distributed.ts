// Data-parallel training throughput: resnet20 (the paper's CIFAR net, option A, 1 input channel,
// 10 classes) on Fashion-MNIST batches of 1x28x28, SGD momentum 0.9, weight decay 5e-4, ours beside
// PyTorch 1.13's DistributedDataParallel on the same cores:
//   ours-ddp          2 ranks x 1 thread, batch 128 per rank (global 256), Gloo over 127.0.0.1
//   ours-2threads     1 process x 2 threads, batch 256
//   ours-1thread      1 process x 1 thread, batch 128 (one rank's compute alone)
//   pytorch-ddp       torch.nn.parallel.DistributedDataParallel, gloo, 2 processes x 1 thread, batch 128 per rank
//   pytorch-2threads  1 process x 2 threads, batch 256
//   pytorch-1thread   1 process x 1 thread, batch 128
// Every process is a child of this one (ours: this script with --role rank; PyTorch:
// bench/torch_ddp.py), started with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and OMP_NUM_THREADS
// in its environment as a launcher would. Each process: warm-up, then `windows` pairs of timed
// windows of `steps` iterations: synced steps, then accumulate() / no_sync() iterations (forward +
// backward, no all-reduce, no optimizer step; one untimed step after them applies the sum);
// ranks meet at a barrier before each window. Then, in the 2-rank jobs, raw all-reduces of a
// buffer as large as the model's gradients. Throughput is rank 0's: global batch x steps / window
// time, median over the windows. The inputs: the first `batches` x 256 images of Fashion-MNIST's
// training split (Debian's dataset-fashion-mnist), normalised, cycled; random N(0,1) images of the
// same shape with random labels where the data set is not installed (the output says which).
// Each job runs behind bench/util.ts's quiet gate (others' CPU measured from /proc/stat over the
// ranks' timed phase, minus what the ranks used).
//   node --import=tsx bench/distributed.ts [--windows 5] [--steps 8] [--warmup 3] [--allreduce 100]
//                                         [--batches 8] [--only ours-ddp,pytorch-ddp,...]
// Prints tables and writes bench/results/distributed.json.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { environment, gated, markdownTable, median, python, quantile, randn, rng, systemBusyMs, uptimeLine, writeResult } from './util.ts';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'bench' },
    windows: { type: 'string', default: '5' },
    steps: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    allreduce: { type: 'string', default: '100' },
    batches: { type: 'string', default: '8' },
    only: { type: 'string' },
    // rank role
    threads: { type: 'string' },
    batch: { type: 'string' },
    data: { type: 'string' },
  },
});

const IMAGE = [1, 28, 28] as const;
const PIXELS = IMAGE[0] * IMAGE[1] * IMAGE[2];
const GLOBAL_BATCH = 256;
const CLASSES = 10;
const jobTimeoutMs = 10 * 60_000;
const OPTIMIZER = { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 } as const;

/** What every rank (ours and PyTorch's) prints as its last line. */
interface RankReport {
  runtime: string;
  rank: number;
  worldSize: number;
  threads: number;
  batch: number;
  numParams: number;
  stepWindowsMs: number[];
  accumulateWindowsMs: number[];
  /** Ours: group.allReduceSum(ceil(numParams / 2) float64 numbers); PyTorch: dist.all_reduce(float32 [numParams]). */
  allReduceMs: number[];
  /** Ours only: the addon's all-reduce of the same Float64Array, without allReduceSum's array conversions. */
  allReduceNativeMs?: number[];
  allReduceBytes: number;
  /** CPU time of the process (all its threads) over its timed phase, ms. */
  cpuMs: number;
  /** Busy CPU time of the whole machine over the timed phase, ms (/proc/stat). */
  sysBusyMs: number | null;
  wallMs: number;
  lastLoss: number;
}

/** The shared input file: `batches` global batches, float32 images then int64 labels. */
function readBatches(file: string, batches: number): { images: Float32Array; labels: BigInt64Array } {
  const buf = readFileSync(file);
  const imageBytes = batches * GLOBAL_BATCH * PIXELS * 4;
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  return { images: new Float32Array(bytes.buffer, 0, imageBytes / 4), labels: new BigInt64Array(bytes.buffer, imageBytes, batches * GLOBAL_BATCH) };
}

async function rankMain(): Promise<void> {
  const { initProcessGroup, resnet20, setNumThreads, Tensor } = await import('../lib/index.ts');
  const threads = Number(values.threads);
  const batch = Number(values.batch);
  const batches = Number(values.batches);
  const windows = Number(values.windows);
  const steps = Number(values.steps);
  const warmup = Number(values.warmup);
  const allReduceRuns = Number(values.allreduce);
  setNumThreads(threads);
  const worldSize = Number(process.env.WORLD_SIZE ?? 1);
  const group = worldSize > 1 ? await initProcessGroup({ timeoutMs: 120_000 }) : null;
  const rank = group?.rank ?? 0;
  const model = await resnet20({ inChannels: 1, numClasses: CLASSES, seed: 0 });
  const trainer = model.trainer({ optimizer: { ...OPTIMIZER }, ...(group && { distributed: group }) });
  const data = readBatches(values.data!, batches);
  // Rank r's share of global batch k: rows [r * batch, (r + 1) * batch).
  const inputs = Array.from({ length: batches }, (_, k) => {
    const first = k * GLOBAL_BATCH + rank * batch;
    return {
      x: new Tensor(data.images.slice(first * PIXELS, (first + batch) * PIXELS), [batch, ...IMAGE]),
      y: new Tensor(data.labels.slice(first, first + batch), [batch]),
    };
  });
  let k = 0;
  const next = () => inputs[k++ % batches]!;
  let lastLoss = Number.NaN;
  const step = async () => {
    const { x, y } = next();
    lastLoss = (await trainer.step(x, y)).loss;
  };
  const accumulate = async () => {
    const { x, y } = next();
    lastLoss = (await trainer.accumulate(x, y)).loss;
  };
  const barrier = async () => group?.barrier();

  for (let i = 0; i < warmup; i++) await step();
  for (let i = 0; i < 2; i++) await accumulate();
  await step();

  await barrier();
  const cpu0 = process.cpuUsage();
  const sys0 = systemBusyMs();
  const wall0 = performance.now();
  const stepWindowsMs: number[] = [];
  const accumulateWindowsMs: number[] = [];
  for (let w = 0; w < windows; w++) {
    await barrier();
    let t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    stepWindowsMs.push(performance.now() - t0);
    await barrier();
    t0 = performance.now();
    for (let i = 0; i < steps; i++) await accumulate();
    accumulateWindowsMs.push(performance.now() - t0);
    await step(); // applies what the window accumulated (untimed)
  }
  const numParams = model.numParameters();
  const allReduceMs: number[] = [];
  const allReduceNativeMs: number[] = [];
  const count = Math.ceil(numParams / 2); // float64: as many bytes as numParams float32
  if (group) {
    const numbers = Array.from({ length: count }, (_, i) => (i % 7) * 0.5);
    const typed = Float64Array.from(numbers);
    const native = group.nativeHandle; // @internal: the addon's call, to separate Gloo from allReduceSum's conversions
    for (let i = 0; i < 3; i++) {
      await group.allReduceSum(numbers);
      await native.allReduceSum(typed);
    }
    for (let i = 0; i < allReduceRuns; i++) {
      await barrier();
      let t0 = performance.now();
      await group.allReduceSum(numbers);
      allReduceMs.push(performance.now() - t0);
      await barrier();
      t0 = performance.now();
      await native.allReduceSum(typed);
      allReduceNativeMs.push(performance.now() - t0);
    }
  }
  await barrier();
  const wallMs = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const sys1 = systemBusyMs();
  const report: RankReport = {
    runtime: 'ours',
    rank,
    worldSize,
    threads,
    batch,
    numParams,
    stepWindowsMs,
    accumulateWindowsMs,
    allReduceMs,
    ...(group && { allReduceNativeMs }),
    allReduceBytes: group ? count * 8 : 0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    sysBusyMs: sys0 === null || sys1 === null ? null : sys1 - sys0,
    wallMs,
    lastLoss,
  };
  model.dispose();
  await group?.destroy();
  console.log(JSON.stringify(report));
}

interface Job {
  name: string;
  runtime: 'ours' | 'pytorch';
  ranks: number;
  threads: number;
  batch: number;
  label: string;
}

const allJobs: Job[] = [
  { name: 'ours-ddp', runtime: 'ours', ranks: 2, threads: 1, batch: 128, label: '(a) ours, DDP over Gloo' },
  { name: 'pytorch-ddp', runtime: 'pytorch', ranks: 2, threads: 1, batch: 128, label: '(d) PyTorch DistributedDataParallel, gloo' },
  { name: 'ours-2threads', runtime: 'ours', ranks: 1, threads: 2, batch: 256, label: '(b) ours, one process' },
  { name: 'pytorch-2threads', runtime: 'pytorch', ranks: 1, threads: 2, batch: 256, label: '(e) PyTorch, one process' },
  { name: 'ours-1thread', runtime: 'ours', ranks: 1, threads: 1, batch: 128, label: "(c) ours, one rank's compute alone" },
  { name: 'pytorch-1thread', runtime: 'pytorch', ranks: 1, threads: 1, batch: 128, label: "(f) PyTorch, one rank's compute alone" },
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One process of a job; resolves with its report. */
function runRank(job: Job, rank: number, port: number, dataFile: string): { promise: Promise<RankReport>; kill: () => void } {
  const common = ['--threads', String(job.threads), '--batch', String(job.batch), '--data', dataFile, '--batches', values.batches!,
    '--windows', values.windows!, '--steps', values.steps!, '--warmup', values.warmup!, '--allreduce', values.allreduce!];
  const [command, args] = job.runtime === 'ours'
    ? [process.execPath, ['--import=tsx', 'bench/distributed.ts', '--role', 'rank', ...common]]
    : [python, ['bench/torch_ddp.py', ...common]];
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      OMP_NUM_THREADS: String(job.threads),
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(job.ranks),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
    },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const promise = new Promise<RankReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${job.name} rank ${rank} exited with ${code ?? signal}: ${out.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as RankReport);
      } catch (e) {
        reject(new Error(`${job.name} rank ${rank} printed no report: ${out.slice(-2000)} (${e})`));
      }
    });
  });
  return { promise, kill: () => child.kill('SIGKILL') };
}

async function runJob(job: Job, dataFile: string): Promise<{ reports: RankReport[]; othersCores: number | null }> {
  const port = await freePort();
  const ranks = Array.from({ length: job.ranks }, (_, r) => runRank(job, r, port, dataFile));
  let reports: RankReport[];
  let timer: NodeJS.Timeout | undefined;
  // A rank that dies makes the others fail at their next collective; one that hangs is killed here.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${job.name} did not finish within ${jobTimeoutMs / 1000} s`)), jobTimeoutMs);
  });
  try {
    reports = await Promise.race([Promise.all(ranks.map((r) => r.promise)), timeout]);
  } catch (error) {
    for (const r of ranks) r.kill();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  reports.sort((a, b) => a.rank - b.rank);
  const r0 = reports[0]!;
  const own = reports.reduce((s, r) => s + r.cpuMs, 0);
  const othersCores = r0.sysBusyMs === null ? null : Math.max(0, (r0.sysBusyMs - own) / r0.wallMs);
  return { reports, othersCores };
}

/** The input batches, written once for every process of the run. */
async function writeInputs(file: string, batches: number): Promise<string> {
  const images = new Float32Array(batches * GLOBAL_BATCH * PIXELS);
  const labels = new BigInt64Array(batches * GLOBAL_BATCH);
  let source: string;
  try {
    const { FashionMNIST } = await import('../lib/index.ts');
    const train = await FashionMNIST.load({ split: 'train' });
    const it = train.batches({ batchSize: GLOBAL_BATCH, shuffle: false, dropLast: true, prefetch: 0 });
    for (let k = 0; k < batches; k++) {
      const r = await it.next();
      if (r.done) throw new Error('Fashion-MNIST has fewer images than asked for');
      images.set(r.value.images.data, k * GLOBAL_BATCH * PIXELS);
      labels.set(r.value.labels.data, k * GLOBAL_BATCH);
    }
    await it.return();
    source = `Fashion-MNIST train, images 0-${batches * GLOBAL_BATCH - 1}, normalised (mean ${FashionMNIST.mean[0]}, std ${FashionMNIST.std[0]})`;
  } catch (error) {
    console.error(`Fashion-MNIST not available (${(error as Error).message}): random N(0, 1) images and random labels instead`);
    images.set(randn(images.length, 1));
    const u = rng(2);
    for (let i = 0; i < labels.length; i++) labels[i] = BigInt(Math.floor(u() * CLASSES));
    source = 'random N(0, 1) images of 1x28x28, random labels (Fashion-MNIST not installed)';
  }
  const out = new Uint8Array(images.byteLength + labels.byteLength);
  out.set(new Uint8Array(images.buffer), 0);
  out.set(new Uint8Array(labels.buffer), images.byteLength);
  writeFileSync(file, out);
  return source;
}

async function benchMain(): Promise<void> {
  const { distributedBackends } = await import('../lib/index.ts');
  const only = values.only?.split(',');
  for (const o of only ?? []) if (!allJobs.some((j) => j.name === o)) throw new Error(`unknown job ${o}: ${allJobs.map((j) => j.name).join(', ')}`);
  let jobs = allJobs.filter((j) => !only || only.includes(j.name));
  if (!distributedBackends().includes('gloo')) {
    console.log('This build of the addon has no Gloo backend (install libgloo-dev and rebuild): data-parallel jobs skipped.');
    jobs = jobs.filter((j) => !(j.runtime === 'ours' && j.ranks > 1));
  }
  let torchVersion: string | null = null;
  try {
    torchVersion = execFileSync(python, ['-c', 'import torch, torch.distributed as d; assert d.is_available() and d.is_gloo_available(); print(torch.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    console.log(`${python} has no torch.distributed with Gloo: PyTorch jobs skipped.`);
    jobs = jobs.filter((j) => j.runtime !== 'pytorch');
  }
  const env = environment();
  const loadBefore = uptimeLine();
  const dataFile = join(tmpdir(), `resnet-bench-distributed-${process.pid}.bin`);
  const batches = Number(values.batches);
  const dataSource = await writeInputs(dataFile, batches);
  const steps = Number(values.steps);
  const results: Record<string, { job: Job; reports: RankReport[]; othersCores: number | null; attempts: number; disturbed: boolean }> = {};
  try {
    for (const job of jobs) {
      console.error(`${job.name}: ${job.ranks} x ${job.threads} thread(s), batch ${job.batch} per process ...`);
      const r = await gated(() => runJob(job, dataFile), (x) => x.othersCores);
      results[job.name] = { job, reports: r.reports, othersCores: r.othersCores, attempts: r.attempts, disturbed: r.disturbed };
    }
  } finally {
    rmSync(dataFile, { force: true });
  }
  const loadAfter = uptimeLine();

  const perStep = (windowsMs: number[]) => median(windowsMs) / steps;
  const summary = Object.fromEntries(Object.entries(results).map(([name, { job, reports, othersCores, disturbed }]) => {
    const r0 = reports[0]!;
    const global = job.batch * job.ranks;
    const ips = r0.stepWindowsMs.map((ms) => (global * steps * 1000) / ms);
    return [name, {
      label: job.label, ranks: job.ranks, threads: job.threads, batch: job.batch, globalBatch: global,
      imagesPerSecond: median(ips), imagesPerSecondRange: [Math.min(...ips), Math.max(...ips)],
      stepMs: perStep(r0.stepWindowsMs), accumulateMs: perStep(r0.accumulateWindowsMs),
      allReduceMs: r0.allReduceMs.length ? median(r0.allReduceMs) : null,
      allReduceIqrMs: r0.allReduceMs.length ? [quantile(r0.allReduceMs, 0.25), quantile(r0.allReduceMs, 0.75)] : null,
      allReduceMinMs: r0.allReduceMs.length ? Math.min(...r0.allReduceMs) : null,
      allReduceNativeMs: r0.allReduceNativeMs?.length ? median(r0.allReduceNativeMs) : null,
      allReduceNativeIqrMs: r0.allReduceNativeMs?.length ? [quantile(r0.allReduceNativeMs, 0.25), quantile(r0.allReduceNativeMs, 0.75)] : null,
      allReduceNativeMinMs: r0.allReduceNativeMs?.length ? Math.min(...r0.allReduceNativeMs) : null,
      allReduceBytes: r0.allReduceBytes, numParams: r0.numParams, othersCores, disturbed,
    }];
  }));

  const f1 = (x: number) => x.toFixed(1);
  const f2 = (x: number) => x.toFixed(2);
  const fo = (x: number | null) => (x === null ? '?' : x.toFixed(2));
  const numParams = Object.values(summary)[0]?.numParams ?? 0;
  console.log(`resnet20 (option A, 1x28x28, 10 classes, ${numParams} parameters), SGD momentum 0.9 wd 5e-4; ${steps} steps a window, median of ${values.windows} windows after ${values.warmup} warm-up steps; ${env.date}`);
  console.log(`inputs: ${dataSource}`);
  console.log(`PyTorch ${torchVersion ?? '-'} (${python}); load before: ${loadBefore}\nload after:  ${loadAfter}\n`);
  console.log(markdownTable(
    ['job', 'processes x threads', 'batch per process (global)', 'img/s (min-max)', 'step ms', 'others (cores)'],
    Object.values(summary).map((s) => [s.label, `${s.ranks} x ${s.threads}`, `${s.batch} (${s.globalBatch})`,
      `${f1(s.imagesPerSecond)} (${f1(s.imagesPerSecondRange[0]!)}-${f1(s.imagesPerSecondRange[1]!)})`, f1(s.stepMs), `${fo(s.othersCores)}${s.disturbed ? ' (disturbed)' : ''}`]),
  ));
  const get = (n: string) => summary[n];
  const ratios: Record<string, number> = {};
  const a = get('ours-ddp'), b = get('ours-2threads'), c = get('ours-1thread'), d = get('pytorch-ddp'), e = get('pytorch-2threads'), f = get('pytorch-1thread');
  console.log('');
  if (a && d) console.log(`ours DDP / PyTorch DDP (a / d): ${f2((ratios.oursVsPytorchDdp = a.imagesPerSecond / d.imagesPerSecond))}x (goal: at least 1.0x)`);
  if (a && c) console.log(`ours scaling efficiency, 2 ranks over one rank's compute (a / 2c): ${f2((ratios.oursScaling = a.imagesPerSecond / (2 * c.imagesPerSecond)))}`);
  if (d && f) console.log(`PyTorch scaling efficiency (d / 2f): ${f2((ratios.pytorchScaling = d.imagesPerSecond / (2 * f.imagesPerSecond)))}`);
  if (a && b) console.log(`ours, 2 ranks x 1 thread over 1 process x 2 threads (a / b): ${f2((ratios.oursDdpVsThreads = a.imagesPerSecond / b.imagesPerSecond))}x`);
  if (d && e) console.log(`PyTorch, 2 ranks x 1 thread over 1 process x 2 threads (d / e): ${f2((ratios.pytorchDdpVsThreads = d.imagesPerSecond / e.imagesPerSecond))}x`);
  if (b && e) console.log(`ours / PyTorch, 1 process x 2 threads (b / e): ${f2((ratios.oursVsPytorchThreads = b.imagesPerSecond / e.imagesPerSecond))}x`);

  // Exposed communication: a synced step minus an accumulate() / no_sync() iteration on the same
  // ranks, window by window (each synced window and the no_sync window right after it), median over
  // the windows. The difference also holds the optimizer step, which the same two figures in one
  // process, one thread, batch 128 show alone (step vs accumulate iteration); and those next to the
  // DDP job's no_sync iteration show what running two processes side by side costs each one.
  const comm: (string | number)[][] = [];
  const exposed: Record<string, unknown> = {};
  for (const [ddpName, singleName, who] of [['ours-ddp', 'ours-1thread', 'ours'], ['pytorch-ddp', 'pytorch-1thread', 'PyTorch']] as const) {
    const ddp = results[ddpName];
    if (!ddp) continue;
    const r0 = ddp.reports[0]!;
    const diffs = r0.stepWindowsMs.map((ms, w) => (ms - r0.accumulateWindowsMs[w]!) / steps);
    const single = summary[singleName];
    const s = summary[ddpName]!;
    exposed[who] = {
      syncedStepMs: s.stepMs, noSyncStepMs: s.accumulateMs, exposedMs: median(diffs), exposedPerWindowMs: diffs,
      oneProcess: single ? { stepMs: single.stepMs, accumulateMs: single.accumulateMs } : null,
    };
    comm.push([who, f1(s.stepMs), f1(s.accumulateMs), `**${f1(median(diffs))}** (${f1(Math.min(...diffs))} to ${f1(Math.max(...diffs))})`,
      single ? `${f1(single.stepMs)} / ${f1(single.accumulateMs)}` : '-']);
  }
  if (comm.length) {
    console.log('\nExposed communication per step (ms, rank 0): synced DDP step minus no_sync iteration, per window pair, median (min to max):\n');
    console.log(markdownTable(['runtime', 'synced step', 'accumulate / no_sync iteration', 'exposed communication', '1 process x 1 thread, batch 128: step / accumulate iteration'], comm));
  }
  const raw: (string | number)[][] = [];
  if (a?.allReduceMs != null) {
    raw.push(['ours, `group.allReduceSum(numbers)`', `${Math.ceil(a.numParams / 2)} float64 (${(a.allReduceBytes / 1e6).toFixed(2)} MB)`, f2(a.allReduceMs), `${f2(a.allReduceIqrMs![0]!)}-${f2(a.allReduceIqrMs![1]!)}`, f2(a.allReduceMinMs!)]);
    raw.push(['ours, the addon\'s all-reduce of a Float64Array (no array conversion)', `${Math.ceil(a.numParams / 2)} float64 (${(a.allReduceBytes / 1e6).toFixed(2)} MB)`, f2(a.allReduceNativeMs!), `${f2(a.allReduceNativeIqrMs![0]!)}-${f2(a.allReduceNativeIqrMs![1]!)}`, f2(a.allReduceNativeMinMs!)]);
  }
  if (d?.allReduceMs != null) {
    raw.push(['PyTorch, `dist.all_reduce(t)`', `${d.numParams} float32 (${(d.allReduceBytes / 1e6).toFixed(2)} MB)`, f2(d.allReduceMs), `${f2(d.allReduceIqrMs![0]!)}-${f2(d.allReduceIqrMs![1]!)}`, f2(d.allReduceMinMs!)]);
  }
  if (raw.length) {
    console.log(`\nRaw all-reduce, 2 ranks, buffer the size of resnet20's gradients, median of ${values.allreduce} (rank 0):\n`);
    console.log(markdownTable(['call', 'buffer', 'median ms', 'p25-p75 ms', 'min ms'], raw));
  }
  writeResult('distributed', {
    environment: env, loadBefore, loadAfter, torch: torchVersion, python, inputs: dataSource,
    options: { windows: Number(values.windows), steps, warmup: Number(values.warmup), allReduceRuns: Number(values.allreduce), batches, optimizer: OPTIMIZER },
    summary, ratios, exposedCommunication: exposed,
    raw: Object.fromEntries(Object.entries(results).map(([n, r]) => [n, { reports: r.reports, othersCores: r.othersCores, attempts: r.attempts, disturbed: r.disturbed }])),
  });
}

if (values.role === 'rank') await rankMain();
else await benchMain();
