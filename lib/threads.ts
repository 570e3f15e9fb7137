// The default number of intra-op threads: what PyTorch would take from OMP_NUM_THREADS, else the
// physical cores this process may run on, capped by the CPU quota of its cgroup. A container
// started with --cpus=2 on a 64-core host sees 64 cores but is given the time of 2; 64 threads
// there spin and wait for each other (each one a fraction of a core).
import { readFileSync } from 'node:fs';

export interface ThreadDefault {
  threads: number;
  /** Which rule gave the number. */
  source: 'OMP_NUM_THREADS' | 'cgroup' | 'cores';
}

export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** OMP_NUM_THREADS as OpenMP reads it: a positive integer, or a list whose first entry counts. */
export function ompNumThreads(value: string | undefined): number | undefined {
  const first = value?.split(',')[0]?.trim();
  if (!first || !/^\d+$/.test(first)) return undefined;
  const n = Number(first);
  return n >= 1 ? n : undefined;
}

/**
 * The CPU quota of this process's cgroup in whole CPUs (rounded up, at least 1), or undefined when
 * there is none. cgroup v2: cpu.max ("200000 100000") of the process's group and of each group
 * above it, the smallest. cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us of the cpu controller.
 */
export function cgroupCpuLimit(read: ReadText = readText, root = '/sys/fs/cgroup'): number | undefined {
  const membership = read('/proc/self/cgroup') ?? '';
  let limit: number | undefined;
  const take = (quota: number, period: number) => {
    if (!(quota > 0 && period > 0)) return;
    const cpus = Math.max(1, Math.ceil(quota / period));
    limit = limit === undefined ? cpus : Math.min(limit, cpus);
  };
  for (const line of membership.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (path === undefined) continue;
    if (controllers === '') {
      // v2: walk from the process's group up to the root.
      for (let dir = path; ; dir = dir.slice(0, dir.lastIndexOf('/')) || '/') {
        const [quota, period] = (read(`${root}${dir === '/' ? '' : dir}/cpu.max`) ?? '').trim().split(/\s+/);
        if (quota !== undefined && quota !== 'max' && period !== undefined) take(Number(quota), Number(period));
        if (dir === '/') break;
      }
    } else if (controllers!.split(',').includes('cpu')) {
      for (const mount of [`${root}/${controllers}`, `${root}/cpu`, `${root}/cpu,cpuacct`]) {
        const quota = read(`${mount}${path === '/' ? '' : path}/cpu.cfs_quota_us`) ?? read(`${mount}/cpu.cfs_quota_us`);
        const period = read(`${mount}${path === '/' ? '' : path}/cpu.cfs_period_us`) ?? read(`${mount}/cpu.cfs_period_us`);
        if (quota !== undefined && period !== undefined) {
          take(Number(quota.trim()), Number(period.trim()));
          break;
        }
      }
    }
  }
  return limit;
}

export function defaultThreads(cores: number, env: NodeJS.ProcessEnv = process.env, read: ReadText = readText, root?: string): ThreadDefault {
  const fromEnv = ompNumThreads(env.OMP_NUM_THREADS);
  if (fromEnv !== undefined) return { threads: fromEnv, source: 'OMP_NUM_THREADS' };
  const quota = cgroupCpuLimit(read, root);
  if (quota !== undefined && quota < cores) return { threads: quota, source: 'cgroup' };
  return { threads: cores, source: 'cores' };
}
