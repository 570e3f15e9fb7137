// createServer() under concurrent load, with a real resnet18: batching with correct per-request
// answers, batching off, the event loop kept free during a big batch, 503 on a full queue, 504 on
// timeouts, replicas in parallel, and graceful shutdown that loses no accepted request. Where the
// order of events matters, the model is wrapped so a test can hold its forward until it is ready.
import { Agent, get, request } from 'node:http';
import test from 'ava';
import sharp from 'sharp';
import { resnet18, type ResNet, type Tensor } from '../lib/index.ts';
import { preprocess } from '../lib/image/preprocess.ts';
import { createServer, predictions, type ResNetServer, type ServerOptions } from '../lib/serve/server.ts';

const prep = { resize: 72, crop: 64 };
let model: ResNet;

test.before(async () => {
  model = await resnet18({ numClasses: 10, seed: 5 });
  await model.forward(await preprocess(await makeImage(0), prep)); // warm-up: the first forward is slow
});

test.after.always(() => model?.dispose());

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function makeImage(seed: number, size = 80): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      pixels[o] = (x * 7 + seed * 29) % 256;
      pixels[o + 1] = (y * 3 + seed * 53) % 256;
      pixels[o + 2] = (x * y + seed * 17) % 256;
    }
  }
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

interface Prediction {
  label: string;
  index: number;
  score: number;
}
interface ClassifyBody {
  results: { predictions: Prediction[] }[];
}

async function classify(base: string, png: Buffer, query = '?topk=10') {
  const response = await fetch(`${base}/v1/classify${query}`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
  return { status: response.status, headers: response.headers, body: (await response.json()) as ClassifyBody & { error?: { code: string; message: string } } };
}

async function reference(png: Buffer): Promise<Prediction[]> {
  const x: Tensor<Float32Array> = await preprocess(png, prep);
  return predictions((await model.forward(x)).data, 10, null);
}

function sameAnswer(t: { true(v: boolean, m?: string): void; deepEqual(a: unknown, b: unknown): void }, got: Prediction[], want: Prediction[]): void {
  t.deepEqual(
    got.map((p) => p.index),
    want.map((p) => p.index),
  );
  const diff = Math.max(...got.map((p, i) => Math.abs(p.score - want[i]!.score)));
  t.true(diff < 1e-4, `max score difference ${diff}`);
}

/** Holds every forward until release(); counts calls and batch sizes. */
function gated(inner: ResNet) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const waiting: (() => void)[] = [];
  const state = { calls: 0, sizes: [] as number[], active: 0 };
  const hold = async <T>(x: Tensor<Float32Array>, run: () => Promise<T>): Promise<T> => {
    state.calls++;
    state.sizes.push(x.shape[0]!);
    state.active++;
    for (const resolve of waiting.splice(0)) resolve();
    try {
      await gate;
      return await run();
    } finally {
      state.active--;
    }
  };
  const wrapper = {
    arch: inner.arch,
    config: inner.config,
    weights: inner.weights,
    forward: (x: Tensor<Float32Array>) => hold(x, () => inner.forward(x)),
    features: (x: Tensor<Float32Array>, o: { layers: string[] }) => hold(x, () => inner.features(x, o)),
  };
  return {
    model: wrapper as unknown as ResNet,
    state,
    release: () => open(),
    /** Resolves once a forward is being held. */
    started: () => (state.active > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
  };
}

/** Polls until `condition` holds; a condition that never comes is caught by the test's timeout. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(2);
}

async function start(options: ServerOptions): Promise<{ server: ResNetServer; base: string }> {
  const server = createServer({ preprocess: prep, ...options });
  return { server, base: await server.listen(0) };
}

/** One GET through `agent`, body read. */
function probe(url: string, agent: Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (response) => {
      response.resume();
      response.on('end', () => resolve());
    }).on('error', reject);
  });
}

function metricValue(text: string, line: RegExp): number {
  const match = text.match(line);
  return match ? Number(match[1]) : NaN;
}

test.serial('concurrent requests share a batch, and each gets its own correct answer', async (t) => {
  const { server, base } = await start({ model, maxBatch: 16, maxDelayMs: 150 });
  try {
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => makeImage(100 + i)));
    const responses = await Promise.all(images.map((png) => classify(base, png)));
    t.true(responses.every((r) => r.status === 200));
    for (const [i, png] of images.entries()) sameAnswer(t, responses[i]!.body.results[0]!.predictions, await reference(png));
    t.notDeepEqual(responses[0]!.body, responses[1]!.body);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const batches = metricValue(metrics, /^resnet_batch_size_count (\d+)$/m);
    const images_ = metricValue(metrics, /^resnet_batch_size_sum (\d+)$/m);
    const singles = metricValue(metrics, /^resnet_batch_size_bucket\{le="1"\} (\d+)$/m);
    t.log(`8 requests ran in ${batches} batch(es)`);
    t.is(images_, 8);
    t.true(batches < 8, 'fewer forwards than requests');
    t.true(singles < batches || batches === 1, 'some batch held more than one image');
  } finally {
    await server.close();
  }
});

test.serial('maxBatch 1: batching off, one forward per image', async (t) => {
  const { server, base } = await start({ model, maxBatch: 1, maxDelayMs: 50 });
  try {
    const images = await Promise.all([1, 2, 3, 4].map((i) => makeImage(200 + i)));
    const responses = await Promise.all(images.map((png) => classify(base, png)));
    for (const [i, png] of images.entries()) sameAnswer(t, responses[i]!.body.results[0]!.predictions, await reference(png));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    t.is(metricValue(metrics, /^resnet_batch_size_count (\d+)$/m), 4);
    t.is(metricValue(metrics, /^resnet_batch_size_bucket\{le="1"\} (\d+)$/m), 4);
  } finally {
    await server.close();
  }
});

test.serial('the event loop stays free: /healthz answers while a batch of 16 224x224 images runs', async (t) => {
  const held = gated(model);
  // Default preprocessing: resize 256, crop 224.
  const server = createServer({ model: held.model, maxBatch: 16, maxDelayMs: 5 });
  const base = await server.listen(0);
  // The probes use a connection of their own, opened beforehand: they exercise the server's loop, not TCP set-up.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await probe(`${base}/healthz`, agent);
    const form = new FormData();
    for (let i = 0; i < 16; i++) form.append('image', new Blob([await makeImage(300 + i, 256)], { type: 'image/png' }), `${i}.png`);
    const big = fetch(`${base}/v1/classify`, { method: 'POST', body: form });
    await held.started();
    t.deepEqual(held.state.sizes, [16], 'one forward of 16 images');
    let running = true;
    held.release();
    const done = big.then((r) => {
      running = false;
      return r;
    });
    // Back to back, so that even a short forward (a fast machine) sees several probes.
    let probes = 0;
    while (running && probes < 20) {
      await probe(`${base}/healthz`, agent);
      if (running) probes++;
    }
    const response = await done;
    t.is(response.status, 200);
    t.is(((await response.json()) as ClassifyBody).results.length, 16);
    t.log(`/healthz answered ${probes} times while the batch ran`);
    // A loop blocked by the forward would answer at most one probe while the batch runs (the rest
    // only after it): three answered during it show the loop turning. No clock bound: the
    // latency is measured in bench/ (BENCHMARKS.md).
    t.true(probes >= 3, `${probes} /healthz probes answered while the batch ran`);
  } finally {
    agent.destroy();
    await server.close();
  }
});

test.serial('a full queue is a 503 with Retry-After; the accepted requests still succeed', async (t) => {
  const held = gated(model);
  const { server, base } = await start({ model: held.model, maxBatch: 1, maxDelayMs: 0, maxQueue: 1 });
  try {
    const [a, b, c] = await Promise.all([makeImage(401), makeImage(402), makeImage(403)]);
    const first = classify(base, a!);
    await held.started();
    const second = classify(base, b!);
    await until(() => server.batcher.queued === 1);
    const third = await classify(base, c!);
    t.is(third.status, 503);
    t.is(third.body.error?.code, 'ERR_RESNET_QUEUE_FULL');
    t.true(Number(third.headers.get('retry-after')) >= 1);
    held.release();
    const [r1, r2] = await Promise.all([first, second]);
    t.is(r1.status, 200);
    t.is(r2.status, 200);
    sameAnswer(t, r2.body.results[0]!.predictions, await reference(b!));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    t.regex(metrics, /^resnet_http_requests_total\{route="\/v1\/classify",method="POST",status="503"\} 1$/m);
  } finally {
    await server.close();
  }
});

test.serial('a request not answered within timeoutMs is a 504, and its queued image never runs', async (t) => {
  const held = gated(model);
  const { server, base } = await start({ model: held.model, maxBatch: 1, maxDelayMs: 0, timeoutMs: 300 });
  try {
    const first = classify(base, await makeImage(501));
    await held.started();
    const second = classify(base, await makeImage(502));
    await until(() => server.batcher.queued === 1);
    const [r1, r2] = await Promise.all([first, second]);
    t.is(r1.status, 504);
    t.is(r1.body.error?.code, 'ERR_RESNET_TIMEOUT');
    t.is(r2.status, 504);
    t.is(server.batcher.queued, 0);
    held.release();
    await server.batcher.drained();
    t.is(held.state.calls, 1, 'the timed-out queued image was dropped, not run');
  } finally {
    await server.close();
  }
});

test.serial('a client that disconnects while queued has its image dropped', async (t) => {
  const held = gated(model);
  const { server, base } = await start({ model: held.model, maxBatch: 1, maxDelayMs: 0 });
  try {
    const first = classify(base, await makeImage(551));
    await held.started();
    const url = new URL(`${base}/v1/classify`);
    const gone = request(url, { method: 'POST', headers: { 'content-type': 'image/png' } });
    gone.on('error', () => {});
    gone.end(await makeImage(552));
    await until(() => server.batcher.queued === 1);
    gone.destroy();
    await until(() => server.batcher.queued === 0);
    held.release();
    t.is((await first).status, 200);
    await server.batcher.drained();
    t.is(held.state.calls, 1, 'the abandoned image never ran');
  } finally {
    await server.close();
  }
});

test.serial('replicas take batches in parallel and answer like one model', async (t) => {
  const second = await resnet18({ numClasses: 10, seed: 5 });
  const heldA = gated(model);
  const heldB = gated(second);
  const { server, base } = await start({ replicas: [heldA.model, heldB.model], maxBatch: 1, maxDelayMs: 0 });
  try {
    const images = await Promise.all([601, 602, 603, 604].map((i) => makeImage(i)));
    const pending = images.map((png) => classify(base, png));
    await Promise.all([heldA.started(), heldB.started()]);
    t.is(server.batcher.busyReplicas, 2, 'both replicas run a batch at the same time');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    t.regex(metrics, /^resnet_busy_replicas 2$/m);
    heldA.release();
    heldB.release();
    const responses = await Promise.all(pending);
    for (const [i, png] of images.entries()) sameAnswer(t, responses[i]!.body.results[0]!.predictions, await reference(png));
    t.true(heldA.state.calls >= 1 && heldB.state.calls >= 1);
    t.is(heldA.state.calls + heldB.state.calls, 4);
    t.deepEqual(((await (await fetch(`${base}/readyz`)).json()) as { replicas: number }).replicas, 2);
  } finally {
    await server.close();
    second.dispose();
  }
});

test.serial('close() under load: every accepted request gets its 200, then new connections are refused', async (t) => {
  const held = gated(model);
  const { server, base } = await start({ model: held.model, maxBatch: 4, maxDelayMs: 10 });
  const images = await Promise.all(Array.from({ length: 8 }, (_, i) => makeImage(700 + i)));
  const pending = images.map((png) => classify(base, png));
  await until(() => server.batcher.running + server.batcher.queued === 8);
  let closed = false;
  const closing = server.close().then(() => (closed = true));
  t.false(server.ready);
  await sleep(100);
  t.false(closed, 'close() waits for the accepted work');
  held.release();
  const responses = await Promise.all(pending);
  t.deepEqual(
    responses.map((r) => r.status),
    Array(8).fill(200),
  );
  for (const [i, png] of images.entries()) sameAnswer(t, responses[i]!.body.results[0]!.predictions, await reference(png));
  await closing;
  t.is(server.batcher.pendingRequests, 0);
  const error = await t.throwsAsync(fetch(`${base}/healthz`));
  t.is((error?.cause as { code?: string } | undefined)?.code, 'ECONNREFUSED');
});

test.serial('shutdownDelayMs: /readyz turns 503 at once while requests are still served, then the listener closes', async (t) => {
  const { server, base } = await start({ model, shutdownDelayMs: 400 });
  const closing = server.close();
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 503);
  t.deepEqual(await ready.json(), { status: 'shutting down' });
  t.is((await fetch(`${base}/healthz`)).status, 200);
  const png = await makeImage(800);
  const late = await classify(base, png);
  t.is(late.status, 200);
  sameAnswer(t, late.body.results[0]!.predictions, await reference(png));
  await closing;
  await t.throwsAsync(fetch(`${base}/healthz`));
});
