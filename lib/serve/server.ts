// An HTTP server for classification and embeddings: fastify, dynamic batching over one or more
// model replicas, Prometheus metrics, graceful shutdown. See lib/serve/README.md for the protocol.
import multipart from '@fastify/multipart';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Registry } from 'prom-client';
import { InvalidArgumentError, ResNetError } from '../errors.js';
import { ImageError } from '../image/errors.js';
import { checkPixels, checkPreprocessOptions, defaultMaxPixels, imagenetMean, imagenetStd, preprocess as preprocessImage, type PreprocessOptions } from '../image/preprocess.js';
import { PreprocessPool } from '../image/preprocess-pool.js';
import type { ResNet } from '../model.js';
import { Tensor } from '../tensor.js';
import { topPredictions, type Prediction } from '../classify.js';
import * as v from '../validate.js';
import { Batcher, type BatchTask, type ImageOutput } from './batcher.js';
import { DecodeGate } from './decode-gate.js';
import { ClientClosedError, PayloadTooLargeError, ShuttingDownError, UnsupportedMediaTypeError } from './errors.js';
import { httpError } from './http-errors.js';
import { createMetrics } from './metrics.js';

/** Turns one encoded image (PNG, JPEG, WebP, ...) into a [1, 3, H, W] float32 tensor. */
export type Preprocessor = (image: Uint8Array) => Promise<Tensor<Float32Array>>;

export interface ServerOptions {
  /** The model to serve (or `replicas`). It must have 3 input channels. */
  model?: ResNet;
  /** Several copies of one model (same classes and weights); each takes batches on its own. */
  replicas?: ResNet[];
  /** Images per forward at most; 1 turns batching off. Default 16. */
  maxBatch?: number;
  /** How long the first image of a batch waits for others while a replica is idle. Default 0 (see Batcher). */
  maxDelayMs?: number;
  /** Images waiting for a forward at most; beyond it requests get 503. Default 256. */
  maxQueue?: number;
  /** Per-request limit, from entering the queue to the answer; beyond it 504. Default 30000. */
  timeoutMs?: number;
  /** Request body limit in bytes (raw body, or all files of a multipart body). Default 10 MiB. */
  bodyLimit?: number;
  /**
   * Time from a request's arrival until its body has been received whole; a client still sending
   * then gets 408 and its connection is closed (slow bodies would otherwise hold sockets and
   * memory for ever). Default 60000.
   */
  bodyTimeoutMs?: number;
  /** Images per request at most (multipart). Default: min(maxQueue, 64). */
  maxImages?: number;
  /** Largest image accepted, in pixels, read from its header before decoding (400 beyond). Default 89,478,485 (Pillow's). */
  maxPixels?: number;
  /** Images decoding at once, all requests together. Default: the CPUs, at most 4. */
  decodeConcurrency?: number;
  /**
   * Worker threads that turn decoded images into tensors (Pillow-exact resizing, normalisation),
   * so that no per-pixel work runs on the event loop. Default: the CPUs, at most 4; 0 does it on
   * the main thread. Not used when `preprocess` is a function.
   */
  preprocessWorkers?: number;
  /** Pixels (by their headers) decoding at once, all requests together. Default 2 x maxPixels. */
  decodeBudgetPixels?: number;
  /**
   * Largest response body of /v1/features, estimated from the feature maps before it is written
   * (a JSON float takes about 12 bytes); beyond it 413 naming base64 and fewer layers. Default 64 MiB.
   */
  maxResponseBytes?: number;
  /** Predictions per image unless `?topk=` says otherwise. Default 5. */
  topk?: number;
  /** Class names by index. Default: the model's classes (model.classes: a description it was loaded with, or ImageNet's for pretrained weights), else the index. */
  labels?: readonly string[];
  /** preprocess() settings, or a function. Default: the model's (model.preprocessing), else resize 256, crop 224, ImageNet mean/std. */
  preprocess?: PreprocessOptions | Preprocessor;
  /** fastify's logger option. Default false. */
  logger?: FastifyServerOptions['logger'];
  /** After close(): /readyz answers 503 but requests are still taken for this long, so a load balancer can stop sending. Default 0. */
  shutdownDelayMs?: number;
  /** close() cuts connections still open after this long. Default timeoutMs + 5000. */
  closeTimeoutMs?: number;
}

export interface ResNetServer {
  /** The fastify instance (routes, hooks, inject()). */
  readonly app: FastifyInstance;
  /** The metrics registry /metrics serves. */
  readonly metrics: Registry;
  /** The batcher (queue depth, running images, ...). */
  readonly batcher: Batcher<ResNet>;
  /** True while the models are loaded and close() has not been called. */
  readonly ready: boolean;
  /** Starts listening; resolves with the address, e.g. 'http://127.0.0.1:8080'. Port 0 picks a free one. */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Graceful stop: /readyz turns 503, then (after shutdownDelayMs) the listener closes, work
   * already accepted finishes and is answered, and the promise resolves. New requests on
   * connections still open get 503. Calling it again returns the same promise. The models are
   * not disposed.
   */
  close(): Promise<void>;
}

const optionNames = [
  'model',
  'replicas',
  'maxBatch',
  'maxDelayMs',
  'maxQueue',
  'timeoutMs',
  'bodyLimit',
  'bodyTimeoutMs',
  'maxImages',
  'maxPixels',
  'decodeConcurrency',
  'preprocessWorkers',
  'decodeBudgetPixels',
  'maxResponseBytes',
  'topk',
  'labels',
  'preprocess',
  'logger',
  'shutdownDelayMs',
  'closeTimeoutMs',
];

interface Settings {
  bodyLimit: number;
  bodyTimeoutMs: number;
  maxImages: number;
  maxPixels: number;
  maxResponseBytes: number;
  topk: number;
  numClasses: number;
  labels: readonly string[] | null;
  layers: string[];
  preprocess: Preprocessor;
  /** Stops the preprocessing workers, if any. */
  closePreprocess: () => Promise<void>;
  shutdownDelayMs: number;
  closeTimeoutMs: number;
}

export function createServer(options: ServerOptions): ResNetServer {
  v.knownKeys('createServer', v.plainObject('options', options), optionNames);
  const replicas = resolveReplicas(options);
  const first = replicas[0]!;
  const batcher = new Batcher<ResNet>({
    replicas,
    ...(options.maxBatch !== undefined && { maxBatch: options.maxBatch }),
    ...(options.maxDelayMs !== undefined && { maxDelayMs: options.maxDelayMs }),
    ...(options.maxQueue !== undefined && { maxQueue: options.maxQueue }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    // Called after a batch, long after `metrics` below exists.
    onBatch: (info) => metrics.observeBatch(info),
  });
  const numClasses = first.config.numClasses;
  const labels = options.labels ?? first.classes ?? null;
  if (labels !== null && (!Array.isArray(labels) || labels.length !== numClasses || !labels.every((l) => typeof l === 'string'))) {
    throw v.invalid(`an array of ${numClasses} strings (one per class)`, 'labels', labels);
  }
  const settings: Settings = {
    bodyLimit: v.positiveInteger('bodyLimit', options.bodyLimit ?? 10 * 1024 * 1024),
    bodyTimeoutMs: v.positiveInteger('bodyTimeoutMs', options.bodyTimeoutMs ?? 60_000),
    maxImages: v.positiveInteger('maxImages', options.maxImages ?? Math.min(batcher.maxQueue, 64)),
    maxPixels: v.positiveInteger('maxPixels', options.maxPixels ?? defaultMaxPixels),
    maxResponseBytes: v.positiveInteger('maxResponseBytes', options.maxResponseBytes ?? 64 * 1024 * 1024),
    topk: Math.min(v.positiveInteger('topk', options.topk ?? 5), numClasses),
    numClasses,
    labels,
    layers: ['stem', ...first.config.widths.map((_, i) => `layer${i + 1}`), 'pool'],
    ...resolvePreprocess(
      options.preprocess,
      first,
      options.maxPixels ?? defaultMaxPixels,
      v.nonNegativeInteger('preprocessWorkers', options.preprocessWorkers ?? Math.max(1, Math.min(4, availableParallelism()))),
    ),
    shutdownDelayMs: v.nonNegativeInteger('shutdownDelayMs', options.shutdownDelayMs ?? 0),
    closeTimeoutMs: v.positiveInteger('closeTimeoutMs', options.closeTimeoutMs ?? batcher.timeoutMs + 5000),
  };

  const gate = new DecodeGate(
    v.positiveInteger('decodeConcurrency', options.decodeConcurrency ?? Math.max(1, Math.min(4, availableParallelism()))),
    v.positiveInteger('decodeBudgetPixels', options.decodeBudgetPixels ?? 2 * settings.maxPixels),
  );

  const metrics = createMetrics(batcher.maxBatch, {
    queued: () => batcher.queued,
    running: () => batcher.running,
    replicas: () => batcher.replicaCount,
    busy: () => batcher.busyReplicas,
  });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: settings.bodyLimit,
    // We answer requests that arrive while draining ourselves (503 for work, 200 for /healthz).
    return503OnClosing: false,
    // Node's own whole-request limit, checked every 30 s; bodyTimeoutMs below is the precise one.
    requestTimeout: settings.bodyTimeoutMs + 30_000,
  });

  let ready = true;
  let draining = false; // /v1/ requests get 503
  let closingConnections = false; // every response says Connection: close

  app.addHook('onRequest', async (request, reply) => {
    watchBody(request, reply, settings.bodyTimeoutMs);
    if (draining && request.url.startsWith('/v1/')) {
      reply.header('connection', 'close');
      throw new ShuttingDownError('The server is shutting down');
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    // Accepted work finishing during the drain closes its connection, so close() can complete.
    if (closingConnections) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error, request, reply) => {
    const e = httpError(error);
    if (e.status >= 500 && e.status !== 503 && e.status !== 504) request.log.error({ err: error }, 'request failed');
    for (const [name, value] of Object.entries(e.headers)) reply.header(name, value);
    return reply.code(e.status).send({ error: { code: e.code, message: e.message } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'ERR_RESNET_NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (!ready) return reply.code(503).send({ status: 'shutting down' });
    if (replicas.some((model) => model.disposed)) return reply.code(503).send({ status: 'model disposed' });
    return { status: 'ready', replicas: replicas.length };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // The image routes live in their own scope, with only the body parsers they accept.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    const raw = { parseAs: 'buffer' as const, bodyLimit: settings.bodyLimit };
    scope.addContentTypeParser(/^image\/.+/i, raw, (_request, body, done) => done(null, body));
    scope.addContentTypeParser('application/octet-stream', raw, (_request, body, done) => done(null, body));
    await scope.register(multipart, {
      limits: { fileSize: settings.bodyLimit, files: settings.maxImages, fields: 16, parts: settings.maxImages + 16 },
    });

    scope.post('/v1/classify', async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const topk = query.topk === undefined ? settings.topk : Math.min(parsePositiveInteger('topk', query.topk), numClasses);
      const outputs = await runImages(request, reply, classifyTask, 'classify');
      return { results: outputs.map((out) => ({ predictions: predictions(out.logits!.data, topk, labels) })) };
    });

    scope.post('/v1/features', async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const layers = parseLayers(query.layers, settings.layers);
      const encoding = query.encoding === undefined ? 'json' : v.oneOf('encoding', query.encoding, ['json', 'base64'] as const);
      const outputs = await runImages(request, reply, featuresTask(layers), 'features');
      // JSON turns each float32 into ~12 characters: 64 images of early layers were 491 MB.
      const floats = outputs.reduce((sum, out) => sum + layers.reduce((s, layer) => s + out[layer]!.data.length, 0), 0);
      const estimate = floats * (encoding === 'json' ? 12 : 4 * (4 / 3));
      if (estimate > settings.maxResponseBytes) {
        throw new PayloadTooLargeError(
          `The response would be about ${(estimate / 1048576).toFixed(1)} MiB (${floats} values as ${encoding}), over the limit of ` +
            `${(settings.maxResponseBytes / 1048576).toFixed(1)} MiB (maxResponseBytes): ask for fewer images or layers, or encoding=base64`,
        );
      }
      return {
        results: outputs.map((out) =>
          Object.fromEntries(
            layers.map((layer) => {
              const map = out[layer]!;
              const data = encoding === 'json' ? Array.from(map.data) : Buffer.from(map.data.buffer, map.data.byteOffset, map.data.byteLength).toString('base64');
              return [layer, { shape: map.shape, stride: map.stride, channels: map.channels, ...(encoding === 'base64' && { encoding: 'float32le-base64' }), data }];
            }),
          ),
        ),
      };
    });
  });

  async function runImages(request: FastifyRequest, reply: FastifyReply, task: BatchTask<ResNet>, route: string): Promise<ImageOutput[]> {
    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const images = await readImages(request, settings);
    // Refused before anything is decoded: a full queue, then images too big by their headers.
    batcher.checkRoom(images.length);
    const sizes = await Promise.all(images.map((image, index) => headerPixels(image, settings.maxPixels, images.length > 1 ? index : undefined)));
    const tensors = await Promise.all(images.map((image, i) => gate.run(sizes[i]!, () => settings.preprocess(image))));
    if (abort.signal.aborted) throw new ClientClosedError('The client closed the connection');
    const outputs = await batcher.submit(task, tensors, { signal: abort.signal });
    metrics.images.inc({ route }, tensors.length);
    return outputs;
  }

  let closing: Promise<void> | undefined;
  const server: ResNetServer = {
    app,
    metrics: metrics.registry,
    batcher,
    get ready() {
      return ready;
    },
    async listen(port = 0, host = '127.0.0.1') {
      v.nonNegativeInteger('port', port);
      return app.listen({ port, host });
    },
    close() {
      closing ??= (async () => {
        ready = false;
        if (settings.shutdownDelayMs > 0 && app.server.listening) await sleep(settings.shutdownDelayMs);
        // Closing the listener resets connections still in the kernel's accept queue, and
        // http.Server.close() closes the connections that look idle at once, resetting requests
        // already sent on them but not yet read: 17 of 20 requests in flight at SIGTERM were reset.
        // So for a short grace the server goes on accepting and reading, answering with
        // Connection: close, and only then closes the listener and the idle connections.
        closingConnections = true;
        if (app.server.listening) await sleep(drainGraceMs);
        draining = true;
        const force = setTimeout(() => app.server.closeAllConnections(), settings.closeTimeoutMs);
        force.unref();
        try {
          await app.close();
        } finally {
          clearTimeout(force);
        }
        await batcher.close();
        await settings.closePreprocess();
      })();
      return closing;
    },
  };
  return server;
}

const classifyTask: BatchTask<ResNet> = {
  key: 'classify',
  run: async (model, batch) => ({ logits: await model.forward(batch) }),
};

const featureTasks = new Map<string, BatchTask<ResNet>>();
function featuresTask(layers: string[]): BatchTask<ResNet> {
  const key = `features:${layers.join(',')}`;
  let task = featureTasks.get(key);
  if (!task) {
    task = { key, run: (model, batch) => model.features(batch, { layers }) };
    featureTasks.set(key, task);
  }
  return task;
}

function resolveReplicas(options: ServerOptions): ResNet[] {
  if ((options.model === undefined) === (options.replicas === undefined)) {
    throw new InvalidArgumentError('Expected exactly one of model and replicas for createServer');
  }
  const replicas = options.replicas ?? [options.model!];
  if (!Array.isArray(replicas) || replicas.length === 0) throw v.invalid('a non-empty array of models', 'replicas', replicas);
  const first = replicas[0]!;
  for (const [i, model] of replicas.entries()) {
    if (typeof model !== 'object' || model === null || typeof model.forward !== 'function') throw v.invalid('a ResNet', `replicas[${i}]`, model);
    if (model.config.inChannels !== 3) throw v.invalid('a model with 3 input channels (RGB images)', `replicas[${i}].config.inChannels`, model.config.inChannels);
    if (model.config.numClasses !== first.config.numClasses || model.arch !== first.arch) {
      throw new InvalidArgumentError(`Expected replicas of one model, but replicas[${i}] is ${model.arch} with ${model.config.numClasses} classes and replicas[0] ${first.arch} with ${first.config.numClasses}`);
    }
  }
  return replicas;
}

function resolvePreprocess(option: ServerOptions['preprocess'], model: ResNet, maxPixels: number, workers: number): Pick<Settings, 'preprocess' | 'closePreprocess'> {
  if (typeof option === 'function') return { preprocess: option, closePreprocess: async () => {} };
  // Buffers only: preprocess() would read a string as a file path.
  let settings: PreprocessOptions;
  if (option !== undefined) settings = { ...(v.plainObject('preprocess', option) as PreprocessOptions) };
  else if (model.preprocessing) settings = { ...model.preprocessing };
  else settings = { resize: 256, crop: 224, mean: imagenetMean, std: imagenetStd };
  settings.maxPixels ??= maxPixels;
  const checked = checkPreprocessOptions(settings);
  if (workers === 0) return { preprocess: (image) => preprocessImage(image, checked), closePreprocess: async () => {} };
  // Started with the first image, so that a server that fails to start or never classifies has none.
  let pool: PreprocessPool | undefined;
  let closed = false;
  return {
    preprocess: (image) => (closed ? preprocessImage(image, checked) : (pool ??= new PreprocessPool(checked, workers)).run(image)),
    closePreprocess: async () => {
      closed = true;
      await pool?.close();
    },
  };
}

/** The pixels an encoded image declares, from its header only; over maxPixels is a 400. */
async function headerPixels(image: Uint8Array, maxPixels: number, index: number | undefined): Promise<number> {
  const where = index === undefined ? {} : { index };
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(image, { limitInputPixels: false }).metadata());
  } catch (error) {
    throw new ImageError(image, (error as Error).message, { cause: error, ...where });
  }
  try {
    checkPixels(width, height, maxPixels);
  } catch (error) {
    throw new ImageError(image, (error as Error).message, where);
  }
  return (width ?? 1) * (height ?? 1);
}

async function readImages(request: FastifyRequest, settings: Settings): Promise<Uint8Array[]> {
  if (request.isMultipart()) {
    const files: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const part of request.parts()) {
        if (part.type !== 'file') continue;
        const bytes = await part.toBuffer();
        total += bytes.length;
        if (total > settings.bodyLimit) throw new PayloadTooLargeError(`The files are over the body limit of ${settings.bodyLimit} bytes`);
        if (bytes.length > 0) files.push(bytes);
      }
    } catch (error) {
      // Limits (413) keep their status; what busboy says about a broken body is the client's fault.
      if (error instanceof ResNetError || typeof (error as { statusCode?: unknown }).statusCode === 'number') throw error;
      throw new InvalidArgumentError(`Malformed multipart/form-data body: ${(error as Error).message}`, { cause: error });
    }
    if (files.length === 0) throw new InvalidArgumentError('Expected one or more image files in the multipart/form-data body but received none');
    return files;
  }
  const body = request.body;
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) throw new InvalidArgumentError('Expected an image in the request body but received an empty body');
    return [body];
  }
  if (body === undefined || body === null) {
    throw new InvalidArgumentError('Expected an image in the request body (Content-Type image/*, application/octet-stream or multipart/form-data) but received none');
  }
  throw new UnsupportedMediaTypeError(`Expected Content-Type image/*, application/octet-stream or multipart/form-data but received ${request.headers['content-type'] ?? 'none'}`);
}

/**
 * Closes the connection of a request whose body is not in after `ms`, with a 408 written straight
 * to the socket (the handler may be waiting on that very body). A complete request is left alone.
 */
function watchBody(request: FastifyRequest, reply: FastifyReply, ms: number): void {
  const raw = request.raw;
  if (raw.complete) return;
  const timer = setTimeout(() => {
    if (raw.complete || raw.socket.destroyed) return;
    const body = JSON.stringify({ error: { code: 'ERR_RESNET_REQUEST_TIMEOUT', message: `The request body was not received within ${ms} ms` } });
    const socket = raw.socket;
    if (!reply.raw.headersSent && socket.writable) {
      socket.end(`HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    }
    setTimeout(() => socket.destroy(), 1000).unref();
  }, ms);
  timer.unref();
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
}

function parsePositiveInteger(name: string, value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw v.invalid('positive integer', name, value);
  return n;
}

function parseLayers(value: unknown, known: string[]): string[] {
  if (value === undefined) return ['pool'];
  if (typeof value !== 'string' || value === '') throw v.invalid(`a comma-separated list of ${known.join(', ')}`, 'layers', value);
  const layers = [...new Set(value.split(',').map((s) => s.trim()))];
  layers.forEach((layer) => v.oneOf('layers', layer, known));
  return layers;
}

/** Softmax over one image's logits, then the `k` best classes (classify()'s arithmetic). */
export function predictions(logits: Float32Array, k: number, labels: readonly string[] | null): Prediction[] {
  return topPredictions(new Tensor(logits, [1, logits.length]), k, labels)[0]!;
}

/** After close(), requests arriving on connections already open are still served this long. */
const drainGraceMs = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
