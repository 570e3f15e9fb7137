// The HTTP API of createServer(): every endpoint and every error status, against a real resnet18
// (random init, 10 classes, small 64x64 crops to keep it quick) over real sockets.
import test from 'ava';
import sharp from 'sharp';
import { InvalidArgumentError, resnet18, type ResNet, type Tensor } from '../lib/index.ts';
import { preprocess } from '../lib/image/preprocess.ts';
import { createServer, predictions, type ResNetServer } from '../lib/serve/server.ts';
import { declaredPng } from './helpers/declared-png.ts';

const prep = { resize: 72, crop: 64 };
let model: ResNet;
let server: ResNetServer;
let base: string;

/** A distinct gradient image per `seed`, encoded as PNG or JPEG. */
async function makeImage(seed: number, format: 'png' | 'jpeg' = 'png', width = 96, height = 80): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      pixels[o] = (x * 3 + seed * 37) % 256;
      pixels[o + 1] = (y * 5 + seed * 11) % 256;
      pixels[o + 2] = ((x + y) * (seed + 1)) % 256;
    }
  }
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}

interface ErrorBody {
  error: { code: string; message: string };
}
interface ClassifyBody {
  results: { predictions: { label: string; index: number; score: number }[] }[];
}
interface FeatureJson {
  shape: number[];
  stride: number;
  channels: number;
  data: number[] | string;
  encoding?: string;
}
interface FeaturesBody {
  results: Record<string, FeatureJson>[];
}

async function post(path: string, body: NonNullable<RequestInit['body']>, contentType?: string): Promise<{ status: number; headers: Headers; json: unknown }> {
  const response = await fetch(`${base}${path}`, { method: 'POST', body, headers: contentType ? { 'content-type': contentType } : {} });
  return { status: response.status, headers: response.headers, json: await response.json() };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** What a single-image forward of the same preprocessed tensor gives, as the server reports it. */
async function reference(bytes: Buffer, k = 10) {
  const x: Tensor<Float32Array> = await preprocess(bytes, prep);
  const logits = await model.forward(x);
  return predictions(logits.data, k, null);
}

test.before(async () => {
  model = await resnet18({ numClasses: 10, seed: 3 });
  server = createServer({ model, maxDelayMs: 2, bodyLimit: 64 * 1024, preprocess: prep });
  base = await server.listen(0);
});

test.after.always(async () => {
  await server?.close();
  model?.dispose();
});

test('listen() resolves with the address on 127.0.0.1', (t) => {
  t.regex(base, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test('POST /v1/classify with a PNG body: top-5 softmax predictions equal to a single forward', async (t) => {
  const png = await makeImage(1);
  const { status, json } = await post('/v1/classify', png, 'image/png');
  t.is(status, 200);
  const { results } = json as ClassifyBody;
  t.is(results.length, 1);
  const got = results[0]!.predictions;
  t.is(got.length, 5);
  const want = await reference(png);
  t.deepEqual(
    got.map((p) => p.index),
    want.slice(0, 5).map((p) => p.index),
  );
  t.true(maxDiff(got.map((p) => p.score), want.slice(0, 5).map((p) => p.score)) < 1e-4);
  t.deepEqual(
    got.map((p) => p.label),
    got.map((p) => String(p.index)),
    'no weights entry: labels are the indices',
  );
  for (let i = 1; i < got.length; i++) t.true(got[i - 1]!.score >= got[i]!.score, 'sorted by score');
});

test('?topk=N: all ten scores sum to 1; N above the class count is clamped; 0 is a 400', async (t) => {
  const jpeg = await makeImage(2, 'jpeg');
  const all = (await post('/v1/classify?topk=10', jpeg, 'application/octet-stream')).json as ClassifyBody;
  const scores = all.results[0]!.predictions.map((p) => p.score);
  t.is(scores.length, 10);
  t.true(Math.abs(scores.reduce((a, b) => a + b) - 1) < 1e-6);
  t.true(maxDiff(scores, (await reference(jpeg)).map((p) => p.score)) < 1e-4);
  t.is(((await post('/v1/classify?topk=1000', jpeg, 'image/jpeg')).json as ClassifyBody).results[0]!.predictions.length, 10);
  t.is(((await post('/v1/classify?topk=3', jpeg, 'image/jpeg')).json as ClassifyBody).results[0]!.predictions.length, 3);
  const bad = await post('/v1/classify?topk=0', jpeg, 'image/jpeg');
  t.is(bad.status, 400);
  t.is((bad.json as ErrorBody).error.code, 'ERR_RESNET_INVALID_ARGUMENT');
  t.regex((bad.json as ErrorBody).error.message, /topk/);
});

test('multipart/form-data with several images: one result each, in order, each its own', async (t) => {
  const images = await Promise.all([makeImage(3), makeImage(4, 'jpeg'), makeImage(5)]);
  const form = new FormData();
  images.forEach((bytes, i) => form.append(`image${i}`, new Blob([bytes], { type: i === 1 ? 'image/jpeg' : 'image/png' }), `img${i}`));
  form.append('note', 'fields are ignored');
  const { status, json } = await post('/v1/classify?topk=10', form);
  t.is(status, 200);
  const { results } = json as ClassifyBody;
  t.is(results.length, 3);
  for (const [i, bytes] of images.entries()) {
    const want = await reference(bytes);
    const got = results[i]!.predictions;
    t.deepEqual(
      got.map((p) => p.index),
      want.map((p) => p.index),
    );
    t.true(maxDiff(got.map((p) => p.score), want.map((p) => p.score)) < 1e-4);
  }
  t.notDeepEqual(results[0], results[1], 'different images, different answers');
});

test('POST /v1/features: the pooled embedding by default, equal to model.features()', async (t) => {
  const png = await makeImage(6);
  const { status, json } = await post('/v1/features', png, 'image/png');
  t.is(status, 200);
  const pool = (json as FeaturesBody).results[0]!.pool!;
  t.deepEqual(pool.shape, [512]);
  t.is(pool.stride, 32);
  t.is(pool.channels, 512);
  const want = await model.features(await preprocess(png, prep), { layers: ['pool'] });
  t.true(maxDiff(pool.data as number[], want.pool!.data) < 1e-4);
});

test('POST /v1/features?layers=pool,layer4,stem: each map with its shape, stride and channels; base64 encoding', async (t) => {
  const png = await makeImage(7);
  const { json } = await post('/v1/features?layers=pool,layer4,stem', png, 'image/png');
  const maps = (json as FeaturesBody).results[0]!;
  t.deepEqual(Object.keys(maps), ['pool', 'layer4', 'stem']);
  t.deepEqual(maps.layer4!.shape, [512, 2, 2]);
  t.is(maps.layer4!.stride, 32);
  t.deepEqual(maps.stem!.shape, [64, 16, 16]);
  t.is(maps.stem!.stride, 4);
  t.is((maps.stem!.data as number[]).length, 64 * 16 * 16);

  const encoded = (await post('/v1/features?layers=layer4&encoding=base64', png, 'image/png')).json as FeaturesBody;
  const layer4 = encoded.results[0]!.layer4!;
  t.is(layer4.encoding, 'float32le-base64');
  const bytes = Buffer.from(layer4.data as string, 'base64');
  const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  t.true(maxDiff(decoded, maps.layer4!.data as number[]) < 1e-4);
});

test('POST /v1/features with an unknown layer or encoding is a 400 that names it', async (t) => {
  const png = await makeImage(8);
  const bad = await post('/v1/features?layers=pool,layer9', png, 'image/png');
  t.is(bad.status, 400);
  t.is((bad.json as ErrorBody).error.code, 'ERR_RESNET_INVALID_ARGUMENT');
  t.regex((bad.json as ErrorBody).error.message, /layer9/);
  t.is((await post('/v1/features?encoding=hex', png, 'image/png')).status, 400);
});

test('GET /healthz and /readyz answer 200', async (t) => {
  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 200);
  t.deepEqual(await ready.json(), { status: 'ready', replicas: 1 });
  t.true(server.ready);
});

test('a body over bodyLimit is a 413 with a JSON error', async (t) => {
  const big = Buffer.alloc(100 * 1024, 1);
  const raw = await post('/v1/classify', big, 'image/png');
  t.is(raw.status, 413);
  t.is((raw.json as ErrorBody).error.code, 'ERR_RESNET_PAYLOAD_TOO_LARGE');
  const form = new FormData();
  form.append('image', new Blob([big], { type: 'image/png' }), 'big.png');
  const multi = await post('/v1/classify', form);
  t.is(multi.status, 413);
  t.is((multi.json as ErrorBody).error.code, 'ERR_RESNET_PAYLOAD_TOO_LARGE');
});

test('an undecodable image is a 400 with the ImageError code', async (t) => {
  const garbage = Buffer.from('this is not a PNG at all, just some text bytes');
  const { status, json } = await post('/v1/classify', garbage, 'image/png');
  t.is(status, 400);
  t.is((json as ErrorBody).error.code, 'ERR_RESNET_IMAGE');
  t.regex((json as ErrorBody).error.message, /Cannot decode image/);
  const form = new FormData();
  form.append('a', new Blob([await makeImage(9)], { type: 'image/png' }), 'a.png');
  form.append('b', new Blob([garbage], { type: 'image/png' }), 'b.png');
  const multi = await post('/v1/features', form);
  t.is(multi.status, 400);
  t.is((multi.json as ErrorBody).error.code, 'ERR_RESNET_IMAGE');
});

test('a wrong Content-Type is a 415; no image at all is a 400', async (t) => {
  for (const type of ['text/plain', 'application/json', 'application/x-www-form-urlencoded']) {
    const { status, json } = await post('/v1/classify', type === 'application/json' ? '{"image":"x"}' : 'hello', type);
    t.is(status, 415, type);
    t.is((json as ErrorBody).error.code, 'ERR_RESNET_MEDIA_TYPE', type);
  }
  const empty = await post('/v1/classify', Buffer.alloc(0), 'image/png');
  t.is(empty.status, 400);
  t.is((empty.json as ErrorBody).error.code, 'ERR_RESNET_INVALID_ARGUMENT');
  const none = await fetch(`${base}/v1/classify`, { method: 'POST' });
  t.is(none.status, 400);
  t.regex(((await none.json()) as ErrorBody).error.message, /Expected an image/);
  const fieldsOnly = new FormData();
  fieldsOnly.append('note', 'no files here');
  const noFiles = await post('/v1/classify', fieldsOnly);
  t.is(noFiles.status, 400);
  t.regex((noFiles.json as ErrorBody).error.message, /image files/);
});

test('a malformed multipart body is a 400', async (t) => {
  const broken = '--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\nnot finished';
  const { status, json } = await post('/v1/classify', broken, 'multipart/form-data; boundary=xyz');
  t.is(status, 400);
  t.is((json as ErrorBody).error.code, 'ERR_RESNET_INVALID_ARGUMENT');
  t.regex((json as ErrorBody).error.message, /Malformed multipart/);
  t.is((await post('/v1/classify', 'x', 'multipart/form-data')).status, 400, 'no boundary');
});

test('an unknown route is a 404 with a JSON error', async (t) => {
  const response = await fetch(`${base}/v2/classify`);
  t.is(response.status, 404);
  t.is(((await response.json()) as ErrorBody).error.code, 'ERR_RESNET_NOT_FOUND');
});

test('GET /metrics: Prometheus text with requests, latency, batch sizes, queue depth and process metrics', async (t) => {
  await post('/v1/classify', await makeImage(10), 'image/png');
  const response = await fetch(`${base}/metrics`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  t.regex(text, /^resnet_http_requests_total\{route="\/v1\/classify",method="POST",status="200"\} \d+$/m);
  t.regex(text, /^resnet_http_request_duration_seconds_bucket\{le="0\.5",route="\/v1\/classify"\} \d+$/m);
  t.regex(text, /^resnet_batch_size_bucket\{le="1"\} \d+$/m);
  t.regex(text, /^resnet_batch_size_count [1-9]\d*$/m);
  t.regex(text, /^resnet_queue_depth \d+$/m, 'other tests run at the same time: any depth');
  t.regex(text, /^resnet_images_total\{route="classify"\} [1-9]\d*$/m);
  t.regex(text, /^process_cpu_user_seconds_total /m);
  t.regex(text, /^nodejs_eventloop_lag_p99_seconds /m);
});

test('labels: custom class names are used; a list of the wrong length is refused', async (t) => {
  const labels = Array.from({ length: 10 }, (_, i) => `class-${i}`);
  const labelled = createServer({ model, labels, preprocess: prep });
  const response = await labelled.app.inject({ method: 'POST', url: '/v1/classify?topk=2', payload: await makeImage(11), headers: { 'content-type': 'image/png' } });
  t.is(response.statusCode, 200);
  const { results } = response.json() as ClassifyBody;
  t.deepEqual(
    results[0]!.predictions.map((p) => p.label),
    results[0]!.predictions.map((p) => `class-${p.index}`),
  );
  await labelled.close();
  t.throws(() => createServer({ model, labels: ['a', 'b'] }), { instanceOf: InvalidArgumentError, message: /labels/ });
});

test('a disposed model: /readyz and image requests answer 503', async (t) => {
  const doomed = await resnet18({ numClasses: 10, seed: 1 });
  const server = createServer({ model: doomed, preprocess: prep });
  t.is((await server.app.inject('/readyz')).statusCode, 200);
  doomed.dispose();
  const ready = await server.app.inject('/readyz');
  t.is(ready.statusCode, 503);
  t.deepEqual(ready.json(), { status: 'model disposed' });
  const response = await server.app.inject({ method: 'POST', url: '/v1/classify', payload: await makeImage(12), headers: { 'content-type': 'image/png' } });
  t.is(response.statusCode, 503);
  t.is((response.json() as ErrorBody).error.code, 'ERR_RESNET_DISPOSED');
  t.is((await server.app.inject('/healthz')).statusCode, 200);
  await server.close();
});

test('createServer() validates its options', (t) => {
  t.throws(() => createServer({ model, maxBatch: 0 }), { message: /maxBatch/ });
  t.throws(() => createServer({ model, replicas: [model] }), { message: /exactly one of model and replicas/ });
  t.throws(() => createServer({} as never), { message: /exactly one of model and replicas/ });
  t.throws(() => createServer({ model, batchSize: 4 } as never), { message: /Unknown option 'batchSize'/ });
  t.throws(() => createServer({ model, bodyLimit: -1 }), { message: /bodyLimit/ });
});

// Hardening: sockets that dripped a body one byte at a time stayed open past 150 s (100 of them
// held 640 MB). A body not received within bodyTimeoutMs gets 408 and its connection is closed.
test('a body that arrives too slowly gets 408 and a closed connection; a normal request still works', async (t) => {
  const { connect } = await import('node:net');
  const slow = createServer({ model, bodyTimeoutMs: 400, preprocess: prep });
  const address = new URL(await slow.listen(0));
  try {
    const socket = connect(Number(address.port), address.hostname);
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n');
    const drip = setInterval(() => socket.writable && socket.write('x'), 100);
    await closed;
    clearInterval(drip);
    t.regex(received, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as ErrorBody;
    t.deepEqual(body.error, { code: 'ERR_RESNET_REQUEST_TIMEOUT', message: 'The request body was not received within 400 ms' });
    const ok = await fetch(new URL('/v1/classify', address), { method: 'POST', body: await makeImage(1), headers: { 'content-type': 'image/png' } });
    t.is(ok.status, 200);
  } finally {
    await slow.close();
  }
  t.throws(() => createServer({ model, bodyTimeoutMs: 0 }), { instanceOf: InvalidArgumentError, message: /bodyTimeoutMs/ });
});

// Hardening: sixteen 32 KB PNGs declaring 16383 x 16383 pixels passed 8 GB of memory. Images are
// now refused by their headers, before any decoding, against Pillow's decompression-bomb limit.
test('decompression bombs are refused from their headers with a 400', async (t) => {
  const bomb = declaredPng(16383, 16383);
  t.true(bomb.length < 1024);
  const form = new FormData();
  for (let i = 0; i < 16; i++) form.append('image', new Blob([bomb], { type: 'image/png' }), `bomb${i}.png`);
  const r = await post('/v1/classify', form);
  t.is(r.status, 400);
  const { error } = r.json as ErrorBody;
  t.is(error.code, 'ERR_RESNET_IMAGE');
  // The images are checked in parallel (preprocess workers): whichever is refused first is named.
  t.regex(error.message, /\(inputs\[\d+\]\): 16383x16383 = 268402689 pixels is over the limit of 89478485 pixels \(maxPixels\)$/);
  await t.throwsAsync(preprocess(bomb), { message: /16383x16383 = 268402689 pixels is over the limit of 89478485 pixels \(maxPixels\)$/ });
  await t.throwsAsync(preprocess(await makeImage(1), { maxPixels: 1000 }), { message: /96x80 = 7680 pixels is over the limit of 1000 pixels/ });
});

test('decoding is bounded across requests, and a request that cannot be queued is refused before decoding', async (t) => {
  let active = 0;
  let peak = 0;
  let calls = 0;
  const counting = async (image: Uint8Array) => {
    calls++;
    active++;
    peak = Math.max(peak, active);
    try {
      await new Promise((r) => setTimeout(r, 30));
      return await preprocess(image, prep);
    } finally {
      active--;
    }
  };
  const bounded = createServer({ model, preprocess: counting, decodeConcurrency: 2, maxQueue: 6, maxImages: 16 });
  const address = await bounded.listen(0);
  try {
    const form = (n: number) => {
      const f = new FormData();
      for (let i = 0; i < n; i++) f.append('image', new Blob([images[i % images.length]!], { type: 'image/png' }), `${i}.png`);
      return f;
    };
    const images = [await makeImage(1), await makeImage(2), await makeImage(3)];
    const answers = await Promise.all([6, 5].map((n) => fetch(`${address}/v1/classify`, { method: 'POST', body: form(n) })));
    t.deepEqual(answers.map((a) => a.status), [200, 200]);
    t.is(calls, 11);
    t.is(peak, 2);
    calls = 0;
    const tooMany = await fetch(`${address}/v1/classify`, { method: 'POST', body: form(7) });
    t.is(tooMany.status, 413);
    t.regex(((await tooMany.json()) as ErrorBody).error.message, /7/);
    t.is(calls, 0); // refused before any image was decoded
  } finally {
    await bounded.close();
  }
});

// Hardening: 64 images to /v1/features as JSON turned 1.35 MB into a 491 MB response.
test('a /v1/features response over maxResponseBytes is a 413 that says what to change', async (t) => {
  const small = createServer({ model, preprocess: prep, maxResponseBytes: 100_000 });
  const address = await small.listen(0);
  try {
    const image = await makeImage(4);
    const json = await fetch(`${address}/v1/features?layers=stem`, { method: 'POST', body: image, headers: { 'content-type': 'image/png' } });
    t.is(json.status, 413);
    t.regex(((await json.json()) as ErrorBody).error.message, /would be about 0\.2 MiB \(16384 values as json\), over the limit of 0\.1 MiB \(maxResponseBytes\): ask for fewer images or layers, or encoding=base64$/);
    const base64 = await fetch(`${address}/v1/features?layers=stem&encoding=base64`, { method: 'POST', body: image, headers: { 'content-type': 'image/png' } });
    t.is(base64.status, 200);
  } finally {
    await small.close();
  }
});
