// `resnet serve`: the HTTP server of lib/serve/ from the command line. SIGTERM / SIGINT stop it
// gracefully (accepted requests are answered first); a second signal exits at once.
import { parseArgs } from 'node:util';
import { architectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel } from '../lib/builders.js';
import type { ResNet } from '../lib/model.js';
import { setNumThreads } from '../lib/runtime.js';
import { createServer } from '../lib/serve/server.js';
import { modelFromWeights } from './model-source.js';
import { UsageError } from './train-commands.js';

export const serveUsage = `  serve [--arch A] [--weights FILE|NAME] [--num-classes N] [--seed S] [--port 8080]
        [--host 127.0.0.1] [--max-batch 16] [--max-delay-ms 0] [--replicas 1] [--max-queue 256]
        [--timeout-ms 30000] [--body-limit BYTES] [--body-timeout-ms 60000] [--max-pixels N]
        [--decode-concurrency N] [--preprocess-workers N] [--max-response-bytes N] [--topk 5] [--threads N]
        [--shutdown-delay-ms 0] [--log-level warn]
        HTTP: POST /v1/classify, POST /v1/features, GET /healthz, /readyz, /metrics`;

const integerOptions = {
  port: 'port',
  'max-batch': 'maxBatch',
  'max-delay-ms': 'maxDelayMs',
  replicas: 'replicas',
  'max-queue': 'maxQueue',
  'timeout-ms': 'timeoutMs',
  'body-limit': 'bodyLimit',
  'body-timeout-ms': 'bodyTimeoutMs',
  'max-pixels': 'maxPixels',
  'decode-concurrency': 'decodeConcurrency',
  'preprocess-workers': 'preprocessWorkers',
  'max-response-bytes': 'maxResponseBytes',
  topk: 'topk',
  threads: 'threads',
  'num-classes': 'numClasses',
  seed: 'seed',
  'shutdown-delay-ms': 'shutdownDelayMs',
} as const;

export const serveOptions = {
  arch: { type: 'string' },
  weights: { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' },
  'log-level': { type: 'string', default: 'warn' },
  ...Object.fromEntries(Object.keys(integerOptions).map((flag) => [flag, { type: 'string' as const }])),
} as const;

function integer(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} expects an integer >= ${min}, got '${value}'`);
  return n;
}

/** Parses the command line, loads the replicas, serves until SIGTERM / SIGINT, then drains and resolves. */
export async function serve(args: string[], json: boolean): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: serveOptions,
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no positional arguments, got '${positionals[0]}'`);
  // A file saved with its description (resnet train --out) brings its own architecture instead.
  const arch = (values.arch as string | undefined) ?? 'resnet50';
  if (!(architectureNames as string[]).includes(arch)) throw new UsageError(`unknown architecture '${arch}'`);
  const n: Partial<Record<(typeof integerOptions)[keyof typeof integerOptions], number>> = {};
  for (const [flag, key] of Object.entries(integerOptions)) {
    const min = key === 'port' || key === 'maxDelayMs' || key === 'seed' || key === 'shutdownDelayMs' || key === 'preprocessWorkers' ? 0 : 1;
    const parsed = integer(flag, (values as Record<string, string | undefined>)[flag], min);
    if (parsed !== undefined) n[key] = parsed;
  }
  const logLevel = values['log-level'] as string;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new UsageError(`unknown --log-level '${logLevel}'`);
  if (n.threads !== undefined) setNumThreads(n.threads);

  const weights = values.weights as string | undefined;
  const replicaCount = n.replicas ?? 1;
  const replicas: ResNet[] = [];
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  try {
    for (let i = 0; i < replicaCount; i++) {
      replicas.push(
        weights !== undefined
          ? await modelFromWeights(weights, arch, n.numClasses !== undefined ? { numClasses: n.numClasses } : {})
          : // Random init: every replica the same weights.
            await createModel(arch as ArchitectureName, { ...(n.numClasses !== undefined && { numClasses: n.numClasses }), seed: n.seed ?? 0 }),
      );
    }
    const server = createServer({
      replicas,
      ...(n.maxBatch !== undefined && { maxBatch: n.maxBatch }),
      ...(n.maxDelayMs !== undefined && { maxDelayMs: n.maxDelayMs }),
      ...(n.maxQueue !== undefined && { maxQueue: n.maxQueue }),
      ...(n.timeoutMs !== undefined && { timeoutMs: n.timeoutMs }),
      ...(n.bodyLimit !== undefined && { bodyLimit: n.bodyLimit }),
      ...(n.bodyTimeoutMs !== undefined && { bodyTimeoutMs: n.bodyTimeoutMs }),
      ...(n.maxPixels !== undefined && { maxPixels: n.maxPixels }),
      ...(n.decodeConcurrency !== undefined && { decodeConcurrency: n.decodeConcurrency }),
      ...(n.preprocessWorkers !== undefined && { preprocessWorkers: n.preprocessWorkers }),
      ...(n.maxResponseBytes !== undefined && { maxResponseBytes: n.maxResponseBytes }),
      ...(n.topk !== undefined && { topk: n.topk }),
      ...(n.shutdownDelayMs !== undefined && { shutdownDelayMs: n.shutdownDelayMs }),
      logger: { level: logLevel },
    });

    let stopping: Promise<void> | undefined;
    const stopped = new Promise<string>((resolve) => {
      onSignal = (signal: NodeJS.Signals) => {
        if (stopping) {
          // A second signal: the user does not want to wait.
          process.exit(130);
        }
        if (!json) console.error(`resnet serve: ${signal}, finishing accepted requests`);
        stopping = server.close();
        void stopping.then(() => resolve(signal));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });

    const address = await server.listen(n.port ?? 8080, values.host as string);
    const info = {
      listening: address,
      arch: replicas[0]!.arch,
      weights: weights ?? null,
      replicas: replicaCount,
      maxBatch: server.batcher.maxBatch,
      maxDelayMs: server.batcher.maxDelayMs,
      maxQueue: server.batcher.maxQueue,
      timeoutMs: server.batcher.timeoutMs,
    };
    console.log(
      json
        ? JSON.stringify(info)
        : `resnet serve: ${info.arch} (${weights ?? 'random init'}) x${replicaCount} listening on ${address} (max batch ${info.maxBatch}, max delay ${info.maxDelayMs} ms)`,
    );
    const signal = await stopped;
    if (!json) console.error(`resnet serve: stopped after ${signal}`);
  } finally {
    if (onSignal) {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    for (const model of replicas) model.dispose();
  }
}
