// Hostile clients against `resnet serve` (a child process, as deployed): what each costs the server
// and whether every client gets an answer.
//   1. decompression bombs: requests of 16 PNGs that declare 16383 x 16383 pixels (under 1 KB each);
//   2. slow bodies: 100 sockets that send a body one byte every 500 ms;
//   3. 500 concurrent classify requests, while /healthz is asked every 20 ms;
//   4. SIGTERM 0-5 ms after 20 concurrent requests were sent.
// For each: the answers by status (or 'reset'), the server's peak resident memory (its own
// process_resident_memory_bytes, sampled every 50 ms from /metrics), and for 3 the /healthz
// latencies. These are robustness figures, not speed figures: they hold on a busy machine too.
//   node --import=tsx bench/serve-probes.ts [--arch resnet18] [--threads 1]
// Prints a table and writes bench/results/serve-probes.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { declaredPng } from '../test/helpers/declared-png.ts';
import { quantile, writeResult } from './util.ts';

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'resnet18' }, threads: { type: 'string', default: '1' } } });
const childScript = `import { serve } from './bin/serve-command.ts';
await serve(JSON.parse(process.env.SERVE_ARGS), true);`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function startServer(extra: string[] = []): Promise<{ child: ChildProcess; base: string }> {
  const args = ['--arch', values.arch!, '--num-classes', '10', '--port', '0', '--log-level', 'silent', '--threads', values.threads!, ...extra];
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', childScript], {
    env: { ...process.env, SERVE_ARGS: JSON.stringify(args) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, base: (JSON.parse(first) as { listening: string }).listening };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Samples the server's RSS every 50 ms until stopped; resolves with the peak in MiB. */
function watchRss(base: string): () => Promise<number> {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const text = await (await fetch(`${base}/metrics`)).text();
        const rss = Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
        peak = Math.max(peak, rss);
      } catch {
        // the server may be closing
      }
      await sleep(50);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return Math.round(peak / 1048576);
  };
}

const tally = (outcomes: string[]) => outcomes.reduce<Record<string, number>>((c, o) => ({ ...c, [o]: (c[o] ?? 0) + 1 }), {});
const outcome = (p: Promise<Response>) => p.then((r) => String(r.status), (e: Error & { cause?: { code?: string } }) => `reset (${e.cause?.code ?? e.message})`);

const photo = await sharp({ create: { width: 500, height: 375, channels: 3, background: { r: 120, g: 80, b: 200 } } }).jpeg().toBuffer();
const classify = (base: string, body: NonNullable<RequestInit["body"]>, type?: string) =>
  fetch(`${base}/v1/classify`, { method: 'POST', body, ...(type && { headers: { 'content-type': type } }) });
const results: Record<string, unknown> = {};

{
  const { child, base } = await startServer();
  await classify(base, photo, 'image/jpeg'); // warm
  const idle = await watchRss(base)();

  // 1. Bombs.
  let done = watchRss(base);
  const bomb = declaredPng(16383, 16383);
  const forms = Array.from({ length: 4 }, () => {
    const form = new FormData();
    for (let i = 0; i < 16; i++) form.append('image', new Blob([bomb], { type: 'image/png' }), `b${i}.png`);
    return form;
  });
  const bombs = tally(await Promise.all(forms.map((f) => outcome(classify(base, f)))));
  results.bombs = { requests: 4, imagesPerRequest: 16, bytesPerImage: bomb.length, answers: bombs, peakRssMiB: await done(), idleRssMiB: idle };

  // 3. 500 concurrent requests with /healthz sampled.
  done = watchRss(base);
  const health: number[] = [];
  let loading = true;
  const prober = (async () => {
    while (loading) {
      const t0 = performance.now();
      await fetch(`${base}/healthz`);
      health.push(performance.now() - t0);
      await sleep(20);
    }
  })();
  const t0 = performance.now();
  const load = tally(await Promise.all(Array.from({ length: 500 }, () => outcome(classify(base, photo, 'image/jpeg')))));
  const seconds = (performance.now() - t0) / 1000;
  loading = false;
  await prober;
  results.concurrent = {
    requests: 500,
    answers: load,
    seconds: Number(seconds.toFixed(1)),
    healthzMs: { samples: health.length, p50: Number(quantile(health, 0.5).toFixed(1)), p99: Number(quantile(health, 0.99).toFixed(1)), max: Number(Math.max(...health).toFixed(1)) },
    peakRssMiB: await done(),
  };
  await stop(child);
}

{
  // 2. Slow bodies, against a 3 s body timeout (the default is 60 s).
  const { child, base } = await startServer(['--body-timeout-ms', '3000']);
  const done = watchRss(base);
  const url = new URL(base);
  const t0 = performance.now();
  const sockets = Array.from({ length: 100 }, () => {
    const socket = connect(Number(url.port), url.hostname);
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('error', () => {});
    socket.write('POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n');
    const drip = setInterval(() => socket.writable && socket.write('x'), 500);
    return new Promise<{ status: string; ms: number }>((resolve) =>
      socket.once('close', () => {
        clearInterval(drip);
        resolve({ status: /^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 'closed without answer', ms: performance.now() - t0 });
      }),
    );
  });
  const closed = await Promise.race([Promise.all(sockets), sleep(15_000).then(() => null)]);
  results.slowBodies = closed
    ? { sockets: 100, bodyTimeoutMs: 3000, answers: tally(closed.map((c) => c.status)), allClosedAfterMs: Math.round(Math.max(...closed.map((c) => c.ms))), peakRssMiB: await done() }
    : { sockets: 100, bodyTimeoutMs: 3000, answers: 'not all closed within 15 s', peakRssMiB: await done() };
  await stop(child);
}

{
  // 4. SIGTERM with 20 requests in flight, three times.
  const rounds: Record<string, number>[] = [];
  for (const delayMs of [0, 2, 5]) {
    const { child, base } = await startServer();
    await classify(base, photo, 'image/jpeg');
    const pending = Array.from({ length: 20 }, () => outcome(classify(base, photo, 'image/jpeg')));
    await sleep(delayMs);
    child.kill('SIGTERM');
    rounds.push(tally(await Promise.all(pending)));
    await once(child, 'exit');
  }
  results.sigterm = { requestsInFlight: 20, signalAfterMs: [0, 2, 5], answers: rounds };
}

console.log(JSON.stringify(results, null, 2));
writeResult('serve-probes', { arch: values.arch, threads: Number(values.threads), ...results });
