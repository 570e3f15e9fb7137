// HTTP serving benchmark: autocannon against `resnet serve`'s server (lib/serve, batching on and
// off) and against a minimal onnxruntime-node server doing the same job with the same weights
// (bench/serve-ort-server.ts), at several concurrencies.
//
// Every request is the same 500x375 JPEG, decoded and preprocessed (resize 256, crop 224) by the
// server and answered with its top-5 classes. Each server runs in a child process of its own;
// the child measures its event-loop delay (perf_hooks.monitorEventLoopDelay, 5 ms resolution) and
// CPU time during each load and reports them over IPC. The loads are interleaved: all servers
// stay up, and each (concurrency, server) slot runs `--rounds` times for duration / rounds
// seconds, servers in alternating order, so that other work on the machine weighs on all of them
// alike. Latency percentiles are computed from every response's time.
//   node --import=tsx bench/serve.ts [--arch resnet18] [--duration 10] [--rounds 2]
//        [--connections 1,8,32] [--max-batch 16] [--max-delay-ms 5] [--threads N] [--skip-ort]
// Prints a table and writes bench/results/serve.json.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { preprocess } from '../lib/image/preprocess.ts';
import { createModel, getNumThreads, libtorchVersion, setNumThreads, type ArchitectureName } from '../lib/index.ts';
import { createServer } from '../lib/serve/server.ts';
import { python, writeResult } from './util.ts';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'bench' },
    arch: { type: 'string', default: 'resnet18' },
    weights: { type: 'string' },
    onnx: { type: 'string' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '1,8,32' },
    'max-batch': { type: 'string', default: '16' },
    'max-delay-ms': { type: 'string', default: '5' },
    threads: { type: 'string' },
    'skip-ort': { type: 'boolean', default: false },
  },
});
const arch = values.arch as ArchitectureName;
if (values.threads) setNumThreads(Number(values.threads));

interface SlotStats {
  /** Worst round's p50 and p99, max over all rounds, and each round's p99 (ms). */
  loop: { p50: number; p99: number; max: number; perRoundP99: number[] };
  cpuPercent: number;
  batches: number;
  images: number;
}

if (values.role === 'server' || values.role === 'ort-server') await runChild(values.role);
else await runBench();

// ---------------------------------------------------------------------------------------------
// Child: one server, and the IPC protocol the parent drives it with:
//   drain -> waits until no request is being handled and nothing is queued
//   start {key} / stop {key} -> measures event-loop delay, CPU time and batches under that key,
//   accumulated over all of the key's rounds; stop answers with the totals so far
//   exit -> closes the server and leaves

async function runChild(role: 'server' | 'ort-server'): Promise<void> {
  let app: FastifyInstance;
  let busy: () => boolean;
  let batchCounts: () => Promise<{ batches: number; images: number }> = async () => ({ batches: 0, images: 0 });
  let close: () => Promise<void>;
  const extra: Record<string, unknown> = { threads: getNumThreads() };

  if (role === 'server') {
    const model = await createModel(arch, { weights: values.weights!, seed: 0 });
    const server = createServer({ model, maxBatch: Number(values['max-batch']), maxDelayMs: Number(values['max-delay-ms']), maxQueue: 1024 });
    app = server.app;
    // autocannon stops at its deadline without waiting for the answers in flight; an abandoned
    // request's response closes at once and its images leave the queue.
    let open = 0;
    app.server.on('request', (_request, response: ServerResponse) => {
      open++;
      response.once('close', () => open--);
    });
    busy = () => open > 0 || server.batcher.running > 0 || server.batcher.queued > 0;
    batchCounts = async () => {
      const metric = await server.metrics.getSingleMetric('resnet_batch_size')!.get();
      const value = (name: string) => (metric.values as { metricName?: string; value: number }[]).find((v) => v.metricName === name)?.value ?? 0;
      return { batches: value('resnet_batch_size_count'), images: value('resnet_batch_size_sum') };
    };
    close = async () => {
      await server.close();
      model.dispose();
    };
  } else {
    const { startOrtServer } = await import('./serve-ort-server.ts');
    const ort = await startOrtServer(values.onnx!, getNumThreads());
    app = ort.app;
    busy = () => ort.inflight() > 0;
    close = ort.close;
    extra.onnxruntime = ort.version;
  }

  // One monitor, always on (disabling and re-enabling one would record the pause as a delay):
  // reset when a load starts, read when it stops. A key's rounds are combined conservatively:
  // the worst round's p99 and max.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const slots = new Map<string, { p50: number[]; p99: number[]; max: number; meanSum: number; cpuMs: number; wallMs: number; batches: number; images: number }>();
  let current: { key: string; cpu: NodeJS.CpuUsage; since: number; batches: number; images: number } | undefined;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  process.on('message', (message: { type: string; key?: string }) => {
    void (async () => {
      if (message.type === 'drain') {
        while (busy()) await sleep(20);
        await sleep(200);
        process.send!({ type: 'drained' });
      } else if (message.type === 'start') {
        const key = message.key!;
        if (!slots.has(key)) slots.set(key, { p50: [], p99: [], max: 0, meanSum: 0, cpuMs: 0, wallMs: 0, batches: 0, images: 0 });
        const counts = await batchCounts();
        current = { key, cpu: process.cpuUsage(), since: performance.now(), ...counts };
        loop.reset();
        process.send!({ type: 'started' });
      } else if (message.type === 'stop') {
        const ms = (ns: number) => ns / 1e6;
        const slot = slots.get(current!.key)!;
        slot.p50.push(ms(loop.percentile(50)));
        slot.p99.push(ms(loop.percentile(99)));
        slot.max = Math.max(slot.max, ms(loop.max));
        const used = process.cpuUsage(current!.cpu);
        slot.cpuMs += (used.user + used.system) / 1000;
        slot.wallMs += performance.now() - current!.since;
        const counts = await batchCounts();
        slot.batches += counts.batches - current!.batches;
        slot.images += counts.images - current!.images;
        process.send!({
          type: 'stats',
          loop: { p50: Math.max(...slot.p50), p99: Math.max(...slot.p99), max: slot.max, perRoundP99: slot.p99 },
          cpuPercent: (slot.cpuMs / slot.wallMs) * 100,
          batches: slot.batches,
          images: slot.images,
        } satisfies SlotStats & { type: string });
      } else if (message.type === 'exit') {
        await close();
        process.disconnect();
      }
    })();
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!({ type: 'listening', url, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Parent: weights, ONNX export, the servers, the loads, the table.

interface AutocannonResult {
  duration: number;
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;

interface Row {
  server: string;
  connections: number;
  requestsPerSecond: number;
  ok: number;
  non2xx: number;
  errors: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  eventLoopP50Ms: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  eventLoopP99PerRoundMs: number[];
  serverCpuPercent: number;
  meanBatch: number | null;
  /** The machine's 1-minute load averages before each round (other work on the machine). */
  loadAverages: number[];
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function ask(child: ChildProcess, message: { type: string; key?: string }): Promise<unknown> {
  const reply = once(child, 'message', { signal: AbortSignal.timeout(120_000) });
  child.send(message);
  const [answer] = (await reply) as [unknown];
  return answer;
}

async function runBench(): Promise<void> {
  // autocannon ships no types; a string-typed specifier keeps tsc from looking for them.
  const autocannonModule: string = 'autocannon';
  const autocannon = ((await import(autocannonModule)) as { default: Autocannon }).default;
  const duration = Number(values.duration);
  const rounds = Number(values.rounds);
  const connectionsList = values.connections.split(',').map(Number);
  const tmp = mkdtempSync(join(tmpdir(), 'resnet-serve-bench-'));
  const children: ChildProcess[] = [];
  try {
    // One JPEG for every request: a 500x375 gradient, like a small photo.
    const width = 500;
    const height = 375;
    const pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const x = i % width;
      const y = Math.floor(i / width);
      pixels[i * 3] = (x * 255) / width;
      pixels[i * 3 + 1] = (y * 255) / height;
      pixels[i * 3 + 2] = ((x + y) * 3) % 256;
    }
    const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();

    // Same weights for both runtimes: random init (seed 0), saved as .pth, exported to ONNX after
    // checking that torchvision gives our logits with them.
    const weights = join(tmp, `${arch}.pth`);
    const model = await createModel(arch, { seed: 0 });
    await model.save(weights);
    const x = await preprocess(jpeg, { resize: 256, crop: 224 });
    const logits = await model.forward(x);
    model.dispose();
    writeFileSync(join(tmp, 'input.f32'), x.data);
    writeFileSync(join(tmp, 'logits.f32'), logits.data);
    const onnx = join(tmp, `${arch}.onnx`);
    let onnxExport: unknown = null;
    if (!values['skip-ort']) {
      const out = execFileSync(
        python,
        ['bench/serve_ort_export.py', '--arch', arch, '--weights', weights, '--out', onnx, '--check-input', join(tmp, 'input.f32'), '--check-logits', join(tmp, 'logits.f32')],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      onnxExport = JSON.parse(out.trim().split('\n').at(-1)!);
    }

    const threadArgs = values.threads ? ['--threads', values.threads] : [];
    const specs = [
      { name: `libtorch-resnet, batching (max ${values['max-batch']}, ${values['max-delay-ms']} ms)`, args: ['--role', 'server', '--weights', weights, '--max-batch', values['max-batch'], '--max-delay-ms', values['max-delay-ms']] },
      { name: 'libtorch-resnet, no batching (max 1)', args: ['--role', 'server', '--weights', weights, '--max-batch', '1', '--max-delay-ms', '0'] },
      ...(values['skip-ort'] ? [] : [{ name: 'onnxruntime-node, one run per request', args: ['--role', 'ort-server', '--onnx', onnx] }]),
    ];
    const servers: { name: string; child: ChildProcess; url: string; info: Record<string, unknown>; top3: unknown }[] = [];
    for (const spec of specs) {
      const child = fork('bench/serve.ts', [...spec.args, '--arch', arch, ...threadArgs], { execArgv: ['--import=tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const [ready] = (await once(child, 'message', { signal: AbortSignal.timeout(120_000) })) as [{ url: string } & Record<string, unknown>];
      const url = `${ready.url}/v1/classify`;
      // Warm-up: the first forwards are slow (allocation, oneDNN / ORT kernel selection).
      let top3: unknown;
      for (let i = 0; i < 6; i++) {
        const response = await fetch(url, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
        top3 = ((await response.json()) as { results: { predictions: unknown[] }[] }).results[0]!.predictions.slice(0, 3);
      }
      await autocannon({ url, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg, connections: 8, duration: 2 });
      servers.push({ name: spec.name, child, url, info: ready, top3 });
    }

    const latencies = new Map<string, number[]>();
    const totals = new Map<string, { ok: number; non2xx: number; errors: number; seconds: number; stats?: SlotStats; loads: number[] }>();
    for (let round = 0; round < rounds; round++) {
      for (const connections of connectionsList) {
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const server of order) {
          const key = `${server.name}|${connections}`;
          await ask(server.child, { type: 'drain' });
          const total = totals.get(key) ?? { ok: 0, non2xx: 0, errors: 0, seconds: 0, loads: [] };
          total.loads.push(Number(loadavg()[0]!.toFixed(2)));
          await ask(server.child, { type: 'start', key });
          const times = latencies.get(key) ?? [];
          const run = autocannon({ url: server.url, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg, connections, duration: duration / rounds, timeout: 60 });
          run.on('response', (_client, status, _bytes, ms) => {
            if (status === 200) times.push(ms);
          });
          const result = await run;
          total.stats = (await ask(server.child, { type: 'stop', key })) as SlotStats;
          total.ok += result['2xx'];
          total.non2xx += result.non2xx;
          total.errors += result.errors + result.timeouts;
          total.seconds += result.duration;
          latencies.set(key, times);
          totals.set(key, total);
          console.error(`round ${round + 1}/${rounds} ${server.name} c=${connections}: ${(result['2xx'] / result.duration).toFixed(1)} req/s`);
        }
      }
    }

    const rows: Row[] = [];
    for (const server of servers) {
      for (const connections of connectionsList) {
        const key = `${server.name}|${connections}`;
        const total = totals.get(key)!;
        const times = latencies.get(key)!.sort((a, b) => a - b);
        const stats = total.stats!;
        rows.push({
          server: server.name,
          connections,
          requestsPerSecond: total.ok / total.seconds,
          ok: total.ok,
          non2xx: total.non2xx,
          errors: total.errors,
          latencyP50Ms: percentile(times, 0.5),
          latencyP99Ms: percentile(times, 0.99),
          eventLoopP50Ms: stats.loop.p50,
          eventLoopP99Ms: stats.loop.p99,
          eventLoopMaxMs: stats.loop.max,
          eventLoopP99PerRoundMs: stats.loop.perRoundP99,
          serverCpuPercent: stats.cpuPercent,
          meanBatch: stats.batches ? stats.images / stats.batches : null,
          loadAverages: total.loads,
        });
      }
    }
    for (const server of servers) server.child.send({ type: 'exit' });
    await Promise.all(children.map((child) => Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 15_000).unref())])));

    const header =
      `${arch}, random init (seed 0); one ${width}x${height} JPEG (${jpeg.length} bytes) per request, resized 256, cropped 224, top-5 JSON; ` +
      `${duration} s per row in ${rounds} interleaved rounds; LibTorch ${libtorchVersion()}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, ${getNumThreads()} intra-op threads each; autocannon in the parent process`;
    console.log(header);
    console.log('| server | connections | req/s | latency p50 ms | latency p99 ms | event loop p99 ms | event loop max ms | server CPU % | mean batch | non-2xx / errors | load avg |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.server} | ${r.connections} | ${r.requestsPerSecond.toFixed(1)} | ${r.latencyP50Ms.toFixed(0)} | ${r.latencyP99Ms.toFixed(0)} | ${r.eventLoopP99Ms.toFixed(1)} | ${r.eventLoopMaxMs.toFixed(1)} | ${r.serverCpuPercent.toFixed(0)} | ${r.meanBatch === null ? '-' : r.meanBatch.toFixed(2)} | ${r.non2xx} / ${r.errors} | ${r.loadAverages.join(', ')} |`,
      );
    }
    writeResult('serve', {
      header,
      arch,
      durationSecondsPerRow: duration,
      rounds,
      image: { width, height, bytes: jpeg.length },
      onnxExport,
      servers: servers.map((s) => ({ name: s.name, ...s.info, url: undefined, type: undefined, top3: s.top3 })),
      rows,
    });
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}
