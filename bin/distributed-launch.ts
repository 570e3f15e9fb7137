// Data-parallel `resnet train`: as torchrun's standalone mode, --nproc-per-node N starts N ranks of
// the same command on this machine (a free port on 127.0.0.1 as the master, RANK, LOCAL_RANK,
// WORLD_SIZE, MASTER_ADDR and MASTER_PORT in each one's environment); a process started by any
// launcher with WORLD_SIZE in its environment joins that job instead.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { initProcessGroup, type ProcessGroup } from '../lib/distributed/process-group.js';

/** A port the kernel says is free now (the rendezvous store binds it right after). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The command line without --nproc-per-node and its value. */
function withoutLauncherFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc-per-node') i++;
    else if (!args[i]!.startsWith('--nproc-per-node=')) out.push(args[i]!);
  }
  return out;
}

/**
 * Starts `nproc` ranks of `resnet train <args>` and resolves with the exit status of the job: 0
 * when every rank succeeded, else the first failure's. Rank 0's output is shown; the others' only
 * with --log-all-ranks, or their error output when they fail. When a rank fails, the others end
 * by themselves (DistributedError) within the timeout; a rank still running 15 s after that
 * is killed, so the launcher never hangs.
 */
export async function launchLocal(nproc: number, args: readonly string[], options: { logAllRanks: boolean; timeoutMs: number }): Promise<number> {
  const port = await freePort();
  const rankArgs = ['train', ...withoutLauncherFlags(args)];
  // Intra-op threads split between the ranks, as torchrun does (it sets OMP_NUM_THREADS=1).
  const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / nproc)));
  const children: ChildProcess[] = [];
  const exits: Array<Promise<number>> = [];
  let failedAt: number | null = null;
  for (let rank = 0; rank < nproc; rank++) {
    const env = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(nproc),
      LOCAL_WORLD_SIZE: String(nproc),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      OMP_NUM_THREADS: threads,
    };
    const quiet = rank !== 0 && !options.logAllRanks;
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...rankArgs], {
      env,
      stdio: ['ignore', quiet ? 'ignore' : 'inherit', quiet ? 'pipe' : 'inherit'],
    });
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      errors = (errors + chunk.toString()).slice(-8192);
    });
    children.push(child);
    exits.push(
      new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          const status = code ?? (signal ? 1 : 0);
          if (status !== 0) {
            failedAt ??= Date.now();
            if (quiet && errors) process.stderr.write(errors.split('\n').filter(Boolean).map((l) => `[rank ${rank}] ${l}\n`).join(''));
            process.stderr.write(`resnet train: rank ${rank} exited with ${signal ?? `status ${code}`}\n`);
          }
          resolve(status);
        });
      }),
    );
  }
  const forward = (signal: NodeJS.Signals) => children.forEach((c) => c.kill(signal));
  process.on('SIGINT', forward).on('SIGTERM', forward);
  // The safety net: ranks that outlive a failure by the timeout and a grace period are killed.
  const watchdog = setInterval(() => {
    if (failedAt !== null && Date.now() - failedAt > options.timeoutMs + 15_000) {
      children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
    }
  }, 1000);
  try {
    const statuses = await Promise.all(exits);
    return statuses.find((s) => s !== 0) ?? 0;
  } finally {
    clearInterval(watchdog);
    process.off('SIGINT', forward).off('SIGTERM', forward);
  }
}

/** Joins the job a launcher started this process in (WORLD_SIZE set), or null when there is none. */
export async function joinLaunchedJob(backend: 'gloo' | 'nccl', timeoutMs: number): Promise<ProcessGroup | null> {
  if (process.env.WORLD_SIZE === undefined || process.env.WORLD_SIZE === '') return null;
  return initProcessGroup({ backend, timeoutMs });
}
