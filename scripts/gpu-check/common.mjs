// Shared by parity.mjs, bench.mjs and env.mjs (scripts/gpu-check): plain Node, no dependencies, so
// that they run on the GPU machine with only the packed node and the runtime bundle.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** --key value / --flag arguments into an object. */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[key] = argv[++i];
    else out[key] = true;
  }
  return out;
}

/** The package's modules, from the staged package root (its dist/lib). */
export async function loadPackage(pkgRoot) {
  const mod = (p) => import(pathToFileURL(join(pkgRoot, 'dist', 'lib', p)).href);
  const [builders, tensor, runtime, native] = await Promise.all([
    mod('builders.js'),
    mod('tensor.js'),
    mod('runtime.js'),
    mod('native.js'),
  ]);
  return { ...builders, Tensor: tensor.Tensor, runtime, native: native.native };
}

/** Reads a safetensors file (F32 / F64 / I64 only; what fixtures.py writes) into typed arrays. */
export function readSafetensorsFile(path) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const bytes = buf.subarray(base + begin, base + end);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const Type = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array }[info.dtype];
    const data = Type ? new Type(copy.buffer) : null;
    if (!data) throw new Error(`${path}: ${name} has dtype ${info.dtype}, not read here`);
    out[name] = { data, shape: info.shape };
  }
  return out;
}

export function maxAbs(a) {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (!(v <= m)) m = v; // NaN propagates
  }
  return m;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i] - b[i]);
    if (!(v <= m)) m = v;
  }
  return m;
}

/** Deterministic pseudo-random floats (xorshift32 + Box-Muller), N(0, 1). */
export function randomNormal(n, seed = 1) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function hasNvidiaSmi() {
  try {
    execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore', timeout: 10000 });
    return true;
  } catch {
    return false;
  }
}

/** One nvidia-smi reading of memory.used (MiB) of a GPU, or null. */
export function smiOnce(gpu = 0) {
  try {
    const out = execFileSync('nvidia-smi', [`--id=${gpu}`, '--query-gpu=memory.used', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 10000,
    });
    return Number.parseFloat(out.trim().split('\n')[0]);
  } catch {
    return null;
  }
}

/**
 * Samples a GPU's memory.used (MiB) in the background while a row runs: nvidia-smi's own loop
 * (-lms) when it works, else one nvidia-smi call every `fallbackMs`. The event loop is free while
 * the native executor thread computes, so the fallback's timer keeps firing.
 */
export class SmiPoller {
  constructor({ gpu = 0, ms = 20, fallbackMs = 100 } = {}) {
    Object.assign(this, { gpu, ms, fallbackMs });
    this.peak = null;
    this.samples = 0;
    this.child = null;
    this.timer = null;
  }

  #sample(v) {
    if (!Number.isFinite(v)) return;
    this.samples++;
    this.peak = this.peak === null ? v : Math.max(this.peak, v);
  }

  start() {
    this.child = spawn('nvidia-smi', [`--id=${this.gpu}`, '--query-gpu=memory.used', '--format=csv,noheader,nounits', `--loop-ms=${this.ms}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let rest = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) this.#sample(Number.parseFloat(line));
    });
    const fallback = () => {
      if (this.timer || this.stopped) return;
      this.mode = 'interval';
      // execFile, not execFileSync: the benchmark measures how free the event loop stays
      this.timer = setInterval(() => {
        execFile('nvidia-smi', [`--id=${this.gpu}`, '--query-gpu=memory.used', '--format=csv,noheader,nounits'], { timeout: 10000 }, (err, out) => {
          if (!err) this.#sample(Number.parseFloat(String(out).trim().split('\n')[0]));
        });
      }, this.fallbackMs);
    };
    this.mode = 'loop';
    this.child.on('error', fallback);
    this.child.on('exit', () => {
      if (!this.stopped) fallback();
    });
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    if (this.timer) clearInterval(this.timer);
    return this.peak;
  }
}

export function gpuName() {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10000 })
      .trim()
      .split('\n')[0];
  } catch {
    return null;
  }
}
