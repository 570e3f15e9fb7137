// Downloads weights files into torch.hub's cache, the way torch.hub.load_state_dict_from_url does:
// same folder, same file names, same SHA-256 prefix check, so a machine that already has
// torchvision's files reuses them and ours are reused by PyTorch.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { EnvHttpProxyAgent, fetch } from 'undici';
import { DownloadError, HashMismatchError } from '../errors.js';
import { boolean, invalid, knownKeys, plainObject, positiveInteger } from '../validate.js';

/** torch.hub.HASH_REGEX: 'resnet50-11ad3fa6.pth' -> '11ad3fa6', a prefix of the file's SHA-256. */
const HASH_REGEX = /-([a-f0-9]*)\./;

export interface DownloadProgress {
  received: number;
  /** From Content-Length; undefined when the server does not send one. */
  total?: number;
}

export interface DownloadOptions {
  /** Default: torchHubCheckpointsDir(). */
  cacheDir?: string;
  /** Default: the last segment of the URL's path, as torch.hub takes it. */
  fileName?: string;
  progress?: (p: DownloadProgress) => void;
  /** Inactivity timeout: no bytes for this long (connecting included) fails the download. */
  timeoutMs?: number;
  /**
   * Slowest acceptable rate, in bytes/s averaged over each `timeoutMs` window: a server that drips
   * a few bytes at a time never trips the inactivity timeout. Default 1024; 0 turns it off.
   */
  minBytesPerSecond?: number;
  /** Total time allowed for the whole download. Default: none. */
  deadlineMs?: number;
  /** Check the SHA-256 prefix in the file name (if it has one). Default true. */
  checkHash?: boolean;
  signal?: AbortSignal;
}

const optionNames = ['cacheDir', 'fileName', 'progress', 'timeoutMs', 'minBytesPerSecond', 'deadlineMs', 'checkHash', 'signal'];

/** A .partial file whose writer is gone is removed once it is this old (or a day old, whatever its writer). */
const STALE_PARTIAL_MS = 24 * 60 * 60 * 1000;

interface Limits {
  timeoutMs: number;
  minBytesPerSecond: number;
  deadlineMs: number | undefined;
}

/** torch.hub's checkpoint folder: $TORCH_HOME/hub/checkpoints, else $XDG_CACHE_HOME/torch/..., else ~/.cache/torch/... */
export function torchHubCheckpointsDir(env: NodeJS.ProcessEnv = process.env): string {
  // Like Python's os.path.expanduser on the chosen folder; an empty variable counts as unset.
  const home = env.HOME || homedir();
  const expand = (p: string) => (p === '~' || p.startsWith('~/') ? home + p.slice(1) : p);
  const torchHome = env.TORCH_HOME || join(env.XDG_CACHE_HOME || join(home, '.cache'), 'torch');
  return join(expand(torchHome), 'hub', 'checkpoints');
}

interface Waiter {
  progress: ((p: DownloadProgress) => void) | undefined;
  /** Detaches this caller with an error; the download itself stops once no caller is left. */
  fail(error: unknown): void;
}

interface Job {
  promise: Promise<string>;
  controller: AbortController;
  waiters: Set<Waiter>;
}

// In-flight downloads of this process, by target: concurrent calls for one file share one
// download. Other processes are kept apart by unique temp names and an atomic rename.
const jobs = new Map<string, Job>();
let dispatcher: EnvHttpProxyAgent | undefined;

/** A proxy-aware dispatcher only when a proxy is configured: undici flags EnvHttpProxyAgent as
 * experimental with a process warning, which users without a proxy should not see. */
function proxyDispatcher(): EnvHttpProxyAgent | undefined {
  const env = process.env;
  const configured = env.HTTP_PROXY || env.http_proxy || env.HTTPS_PROXY || env.https_proxy;
  if (!configured) return undefined;
  dispatcher ??= new EnvHttpProxyAgent(); // honours HTTP(S)_PROXY / NO_PROXY
  return dispatcher;
}

/**
 * Downloads `url` into the cache (unless the file is already there) and returns its path.
 * A file already in the cache is trusted without re-hashing, as torch.hub does.
 */
export async function downloadWeights(url: string, options: DownloadOptions = {}): Promise<string> {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {}
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) throw invalid('an http(s) URL', 'url', url);
  knownKeys('downloadWeights', plainObject('options', options), optionNames);
  const { progress, signal } = options;
  const cacheDir = options.cacheDir ?? torchHubCheckpointsDir();
  if (typeof cacheDir !== 'string' || cacheDir === '') throw invalid('non-empty string', 'cacheDir', cacheDir);
  const fileName = options.fileName ?? basename(parsed.pathname);
  if (typeof fileName !== 'string' || !/^[^/\\]+$/.test(fileName) || fileName === '.' || fileName === '..') {
    throw invalid('file name without a folder', 'fileName', fileName);
  }
  if (progress !== undefined && typeof progress !== 'function') throw invalid('function', 'progress', progress);
  const timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? 60_000);
  const minBytesPerSecond = options.minBytesPerSecond ?? 1024;
  if (typeof minBytesPerSecond !== 'number' || !(minBytesPerSecond >= 0) || !Number.isFinite(minBytesPerSecond)) {
    throw invalid('non-negative number', 'minBytesPerSecond', minBytesPerSecond);
  }
  const deadlineMs = options.deadlineMs === undefined ? undefined : positiveInteger('deadlineMs', options.deadlineMs);
  const checkHash = boolean('checkHash', options.checkHash ?? true);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('AbortSignal', 'signal', signal);
  if (signal?.aborted) throw new DownloadError(`Download of ${url} was aborted`, { cause: signal.reason });

  const target = join(cacheDir, fileName);
  const hashPrefix = checkHash ? HASH_REGEX.exec(fileName)?.[1] : undefined;
  const key = `${target}\n${url}\n${hashPrefix}`;
  let job = jobs.get(key);
  if (!job) {
    const controller = new AbortController();
    const waiters = new Set<Waiter>();
    const onProgress = (p: DownloadProgress) => {
      for (const w of waiters) {
        try {
          w.progress?.(p);
        } catch (error) {
          w.fail(error); // a throwing callback fails its own caller, not the others
        }
      }
    };
    const promise = fetchToCache(url, cacheDir, target, hashPrefix, { timeoutMs, minBytesPerSecond, deadlineMs }, controller.signal, onProgress);
    const created: Job = { promise, controller, waiters };
    const forget = () => {
      if (jobs.get(key) === created) jobs.delete(key);
    };
    promise.then(forget, forget);
    jobs.set(key, (job = created));
  }
  const shared = job;
  return new Promise<string>((resolve, reject) => {
    const settle = (done: () => void) => {
      if (!shared.waiters.delete(waiter)) return false; // already detached
      signal?.removeEventListener('abort', onAbort);
      done();
      return true;
    };
    const waiter: Waiter = {
      progress,
      fail: (error) => {
        if (settle(() => reject(error)) && shared.waiters.size === 0) {
          if (jobs.get(key) === shared) jobs.delete(key); // a later call must not join a cancelled download
          shared.controller.abort();
        }
      },
    };
    const onAbort = () => waiter.fail(new DownloadError(`Download of ${url} was aborted`, { cause: signal!.reason }));
    shared.waiters.add(waiter);
    signal?.addEventListener('abort', onAbort, { once: true });
    shared.promise.then(
      (path) => settle(() => resolve(path)),
      (error) => settle(() => reject(error)),
    );
  });
}

async function fetchToCache(
  url: string,
  dir: string,
  target: string,
  hashPrefix: string | undefined,
  limits: Limits,
  cancel: AbortSignal,
  onProgress: (p: DownloadProgress) => void,
): Promise<string> {
  const { timeoutMs, minBytesPerSecond, deadlineMs } = limits;
  if (await isFile(target)) return target;
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DownloadError(`Cannot use the cache folder '${dir}': ${code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way of the folder' : reason(error)}`, { cause: error });
  }
  await removeStalePartials(dir, basename(target), timeoutMs);
  // Unique per process and call: two downloaders never write the same temp file.
  const temp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.partial`;
  const controller = new AbortController();
  const stop = () => controller.abort();
  cancel.addEventListener('abort', stop, { once: true });
  if (cancel.aborted) stop(); // cancelled while we were checking the cache
  let timedOut = false;
  let tooSlow: string | undefined;
  let pastDeadline = false;
  let timer: NodeJS.Timeout | undefined;
  // Rate: every timeoutMs once the body flows, the window's bytes must reach minBytesPerSecond on
  // average (connecting is the inactivity timeout's business).
  let windowBytes = 0;
  let rateTimer: NodeJS.Timeout | undefined;
  const watchRate = () => {
    if (minBytesPerSecond === 0) return;
    rateTimer = setInterval(() => {
      if (windowBytes < (minBytesPerSecond * timeoutMs) / 1000) {
        tooSlow = `${windowBytes} bytes in ${timeoutMs} ms, below the minimum of ${minBytesPerSecond} bytes/s`;
        controller.abort();
      }
      windowBytes = 0;
    }, timeoutMs);
  };
  const deadline =
    deadlineMs === undefined
      ? undefined
      : setTimeout(() => {
          pastDeadline = true;
          controller.abort();
        }, deadlineMs);
  const restartTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
  };
  let file: Awaited<ReturnType<typeof open>> | undefined;
  let received = 0;
  let total: number | undefined;
  try {
    restartTimer();
    const viaProxy = proxyDispatcher();
    const response = await fetch(url, {
      ...(viaProxy && { dispatcher: viaProxy }),
      signal: controller.signal,
      redirect: 'follow',
      // Identity encoding, so Content-Length counts the bytes we receive (truncation check).
      headers: { 'accept-encoding': 'identity' },
    });
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => {}); // release the connection
      throw new DownloadError(`HTTP ${response.status} ${response.statusText} for ${response.url || url}`);
    }
    const length = response.headers.get('content-length');
    // A server may encode anyway (gzip despite 'identity'): fetch decodes the body, and the length
    // then counts encoded bytes, not the file's. The hash check still guards the content.
    const encoding = response.headers.get('content-encoding');
    const encoded = encoding !== null && encoding.trim().toLowerCase() !== 'identity';
    total = !encoded && length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
    const hash = createHash('sha256');
    file = await open(temp, 'wx');
    watchRate();
    // Streamed: each chunk is hashed and written, never the whole file in memory.
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      restartTimer();
      hash.update(chunk);
      // A write may be partial: loop until the chunk is on disk.
      for (let at = 0; at < chunk.byteLength; ) at += (await file.write(chunk, at)).bytesWritten;
      received += chunk.byteLength;
      windowBytes += chunk.byteLength;
      onProgress(total === undefined ? { received } : { received, total });
    }
    clearTimeout(timer);
    if (total !== undefined && received !== total) {
      throw new DownloadError(`Download of ${url} was truncated: received ${received} of ${total} bytes`);
    }
    await file.close();
    file = undefined;
    const digest = hash.digest('hex');
    if (hashPrefix !== undefined && !digest.startsWith(hashPrefix)) {
      throw new HashMismatchError(
        `Invalid hash for ${url}: expected a SHA-256 starting with "${hashPrefix}", got "${digest}"`,
      );
    }
    await rename(temp, target); // atomic: readers see no file or the whole file
    return target;
  } catch (error) {
    await file?.close().catch(() => {});
    await unlink(temp).catch(() => {}); // never leave a partial file, whatever failed
    if (timedOut) throw new DownloadError(`No data from ${url} for ${timeoutMs} ms (timeout)`, { cause: error });
    if (tooSlow !== undefined) throw new DownloadError(`Download of ${url} was too slow: ${tooSlow} (minBytesPerSecond)`, { cause: error });
    if (pastDeadline) throw new DownloadError(`Download of ${url} did not finish within ${deadlineMs} ms (deadlineMs), ${received} bytes received`, { cause: error });
    if (cancel.aborted) throw new DownloadError(`Download of ${url} was aborted`, { cause: error });
    if (error instanceof DownloadError) throw error;
    const got = total === undefined ? '' : ` after ${received} of ${total} bytes`;
    throw new DownloadError(`Could not download ${url}: ${reason(error)}${got}`, { cause: error });
  } finally {
    clearTimeout(timer);
    clearInterval(rateTimer);
    clearTimeout(deadline);
    cancel.removeEventListener('abort', stop);
  }
}

/**
 * Removes `<fileName>.<pid>.<hex>.partial` files that a killed downloader left: those whose
 * process is gone from this machine and that nobody wrote to for two timeouts, and any a day old.
 * (A live download on another machine sharing the folder keeps its file's time fresh.)
 */
async function removeStalePartials(dir: string, fileName: string, timeoutMs: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(`${fileName}.`)) continue;
    const match = /^\.(\d+)\.[0-9a-f]{12}\.partial$/.exec(name.slice(fileName.length));
    if (!match) continue;
    const path = join(dir, name);
    const age = await stat(path).then((s) => now - s.mtimeMs, () => undefined);
    if (age === undefined) continue;
    if (age > STALE_PARTIAL_MS || (!processAlive(Number(match[1])) && age > 2 * timeoutMs)) await unlink(path).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** undici says 'fetch failed' / 'terminated' and keeps the useful part in `cause`. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined;
  return cause ? `${message} (${cause})` : message;
}
