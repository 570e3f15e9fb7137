// Shared by the benchmarks: medians, the system Python, and result files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

export const python = process.env.RESNET_BENCH_PYTHON ?? '/usr/bin/python3';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs a bench/*.py script and parses the one JSON line it prints. */
export function runPython<T>(script: string, args: string[]): T {
  return JSON.parse(execFileSync(python, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 })) as T;
}

/** Times `fn` warmup + runs times and returns the timed runs (ms). */
export async function timeRuns(fn: () => Promise<unknown>, runs: number, warmup: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const start = performance.now();
    await fn();
    if (i >= warmup) times.push(performance.now() - start);
  }
  return times;
}

export function writeResult(name: string, data: unknown): void {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${name}.json`, JSON.stringify({ date: new Date().toISOString(), ...(data as object) }, null, 2));
}
