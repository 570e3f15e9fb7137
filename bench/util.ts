// Shared by the benchmarks: statistics, the system Python, machine facts, load measurement,
// deterministic inputs, output comparison, tables and result files.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

export const python = process.env.RESNET_BENCH_PYTHON ?? '/usr/bin/python3';

export const median = (xs: number[]) => quantile(xs, 0.5);

/** Linear-interpolated quantile (q in [0, 1]) of a non-empty sample. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) throw new Error('quantile of an empty sample');
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export interface Summary { median: number; q1: number; q3: number; min: number; max: number; n: number }

export function summarize(xs: number[]): Summary {
  return { median: median(xs), q1: quantile(xs, 0.25), q3: quantile(xs, 0.75), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Runs a bench/*.py script and parses the one JSON line it prints (its last line of stdout). */
export function runPython<T>(script: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): T {
  const out = execFileSync(python, [script, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: options.env ?? process.env,
    timeout: options.timeoutMs ?? 15 * 60_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** Times `fn` warmup + runs times and returns the timed runs (ms). */
export async function timeRuns(fn: () => Promise<unknown>, runs: number, warmup: number): Promise<number[]> {
  return (await timeRunsWithCpu(fn, runs, warmup)).timesMs;
}

export interface TimedRuns {
  timesMs: number[];
  /** CPU time of this whole process during the timed runs, divided by their wall time. */
  coresBusy: number;
  /** CPU used by everything else on the machine during the timed runs, in cores (from /proc/stat). */
  othersCores: number | null;
}

/** Like timeRuns, and also measures this process's CPU use and everyone else's during the timed runs. */
export async function timeRunsWithCpu(fn: () => Promise<unknown>, runs: number, warmup: number): Promise<TimedRuns> {
  for (let i = 0; i < warmup; i++) await fn();
  const timesMs: number[] = [];
  const cpu0 = process.cpuUsage();
  const sys0 = systemBusyMs();
  const wall0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    timesMs.push(performance.now() - start);
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const ownMs = (cpu.user + cpu.system) / 1000;
  const sys1 = systemBusyMs();
  const othersCores = sys0 === null || sys1 === null ? null : Math.max(0, (sys1 - sys0 - ownMs) / wall);
  return { timesMs, coresBusy: ownMs / wall, othersCores };
}

// The machine is shared: other people's builds and tests take whole cores at times, and with
// OpenMP's spinning barriers a forward that loses one of its 2 cores can take 5-20 times as long.
// A timing block therefore waits until the rest of the machine is quiet (less than `quietCores`
// of CPU used by others over a 1 s window), and a block during which others used more than that
// is run again, up to `quietRetries` times; one still disturbed after that is kept and flagged.
// RESNET_BENCH_QUIET=0 turns the gate off; RESNET_BENCH_QUIET=0.3 loosens it.
export const quietCores = Number(process.env.RESNET_BENCH_QUIET ?? 0.15);
export const quietRetries = Number(process.env.RESNET_BENCH_QUIET_RETRIES ?? 4);
const quietTimeoutMs = Number(process.env.RESNET_BENCH_QUIET_TIMEOUT_S ?? 300) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU used by everything but this process over the next `ms` milliseconds, in cores. */
export async function othersCoresOver(ms: number): Promise<number | null> {
  const sys0 = systemBusyMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(ms);
  const sys1 = systemBusyMs();
  const cpu = process.cpuUsage(cpu0);
  if (sys0 === null || sys1 === null) return null;
  return Math.max(0, (sys1 - sys0 - (cpu.user + cpu.system) / 1000) / (performance.now() - t0));
}

/** Waits (up to RESNET_BENCH_QUIET_TIMEOUT_S, 300 s) until others use less than quietCores. */
export async function waitForQuiet(): Promise<{ waitedMs: number; quiet: boolean }> {
  const t0 = performance.now();
  if (!(quietCores > 0)) return { waitedMs: 0, quiet: true };
  for (;;) {
    const others = await othersCoresOver(1000);
    const waitedMs = performance.now() - t0;
    if (others === null || others < quietCores) return { waitedMs, quiet: true };
    if (waitedMs > quietTimeoutMs) return { waitedMs, quiet: false };
  }
}

export interface GateInfo { attempts: number; waitedMs: number; disturbed: boolean }

/**
 * Runs `block` after waiting for a quiet machine, and again (up to quietRetries times) while the
 * others' CPU it reports is above quietCores. Returns the last result with how it went.
 */
export async function gated<T>(block: () => Promise<T>, othersOf: (r: T) => number | null): Promise<T & GateInfo> {
  let waitedMs = 0;
  for (let attempt = 1; ; attempt++) {
    waitedMs += (await waitForQuiet()).waitedMs;
    const r = await block();
    const others = othersOf(r);
    const disturbed = quietCores > 0 && others !== null && others >= quietCores;
    if (!disturbed || attempt > quietRetries) return { ...r, attempts: attempt, waitedMs, disturbed };
    console.error(`  (others used ${others!.toFixed(2)} cores during the block: running it again)`);
  }
}

/** timeRunsWithCpu behind the quiet gate. */
export const timeRunsGated = (fn: () => Promise<unknown>, runs: number, warmup: number) =>
  gated(() => timeRunsWithCpu(fn, runs, warmup), (t) => t.othersCores);

/** Busy CPU time of the whole machine since boot (ms), from /proc/stat; null where there is none. */
export function systemBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return (busy * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

export const loadAverage = () => loadavg().map((x) => Number(x.toFixed(2))) as [number, number, number];

export const uptimeLine = () => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${loadAverage().join(', ')}`;
  }
};

/** Resident set size of this process, in MiB. */
export const rssMiB = () => process.memoryUsage.rss() / (1 << 20);

/** The facts a result needs to be read later: machine, software, load, and the addon that was measured. */
export function environment(): Record<string, unknown> {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const addon = 'build/Release/libtorch_resnet.node';
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    loadAverage: loadAverage(),
    gitHead: git('rev-parse', '--short', 'HEAD'),
    // The native sources measured may be work in progress: say so.
    nativeChanges: git('status', '--short', '--', 'native', 'CMakeLists.txt'),
    addonBuilt: existsSync(addon) ? statSync(addon).mtime.toISOString() : null,
  };
}

/** mulberry32: a small seeded generator, so every runtime gets the same input. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard-normal float32 values (Box-Muller), from a seed. */
export function randn(n: number, seed: number): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

export function writeFloat32(path: string, data: Float32Array): void {
  writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export function readFloat32(path: string): Float32Array {
  const b = readFileSync(path);
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
}

/** max |a - b| / max |ref|: the relative difference the benchmarks accept below a tolerance. */
export function relativeDifference(ref: ArrayLike<number>, other: ArrayLike<number>): { maxAbsDiff: number; maxAbsRef: number; relative: number } {
  if (ref.length !== other.length) throw new Error(`outputs differ in size: ${ref.length} vs ${other.length}`);
  let maxAbsDiff = 0;
  let maxAbsRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i]! - other[i]!);
    if (!(d <= maxAbsDiff)) maxAbsDiff = d; // NaN propagates as a failure
    maxAbsRef = Math.max(maxAbsRef, Math.abs(ref[i]!));
  }
  return { maxAbsDiff, maxAbsRef, relative: maxAbsDiff / Math.max(maxAbsRef, Number.MIN_VALUE) };
}

/** A Markdown table. */
export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function writeResult(name: string, data: unknown): void {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${name}.json`, JSON.stringify({ date: new Date().toISOString(), ...(data as object) }, null, 2) + '\n');
}
