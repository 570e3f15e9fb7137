// The default thread count: OMP_NUM_THREADS as PyTorch reads it, else the physical cores capped by
// the cgroup CPU quota (v1 and v2 layouts, given as fake files), applied when the addon loads.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cgroupCpuLimit, defaultThreads, ompNumThreads } from '../lib/threads.ts';

const files = (map: Record<string, string>) => (path: string) => (Object.hasOwn(map, path) ? map[path] : undefined);

test('OMP_NUM_THREADS: a positive integer, or the first of a list', (t) => {
  t.is(ompNumThreads('3'), 3);
  t.is(ompNumThreads(' 4,2 '), 4);
  for (const bad of [undefined, '', '0', '-1', 'two', '2.5']) t.is(ompNumThreads(bad), undefined, String(bad));
});

test('cgroup v2: the smallest cpu.max on the way up to the root, rounded up', (t) => {
  const read = files({
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': '250000 100000\n', // 2.5 CPUs -> 3
    '/sys/fs/cgroup/kubepods/cpu.max': '800000 100000\n',
    '/sys/fs/cgroup/cpu.max': 'max 100000\n',
  });
  t.is(cgroupCpuLimit(read), 3);
  t.is(cgroupCpuLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1); // half a CPU: 1 thread
  t.is(cgroupCpuLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000' })), undefined);
  t.is(cgroupCpuLimit(files({})), undefined);
});

test('cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us; -1 is no quota', (t) => {
  const read = files({
    '/proc/self/cgroup': '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
  });
  t.is(cgroupCpuLimit(read), 2);
  const unlimited = files({
    '/proc/self/cgroup': '4:cpu,cpuacct:/\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
  });
  t.is(cgroupCpuLimit(unlimited), undefined);
});

test('the default: OMP_NUM_THREADS first, then the quota when it is below the cores', (t) => {
  const quota2 = files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000' });
  t.deepEqual(defaultThreads(64, { OMP_NUM_THREADS: '5' }, quota2), { threads: 5, source: 'OMP_NUM_THREADS' });
  t.deepEqual(defaultThreads(64, {}, quota2), { threads: 2, source: 'cgroup' });
  t.deepEqual(defaultThreads(1, {}, quota2), { threads: 1, source: 'cores' });
  t.deepEqual(defaultThreads(8, {}, files({})), { threads: 8, source: 'cores' });
});

test('the addon starts with OMP_NUM_THREADS threads when it is set', (t) => {
  const probe = "const { getNumThreads } = await import('./lib/index.ts'); console.log(getNumThreads());";
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', probe], { encoding: 'utf8', env: { ...process.env, ...env } });
  const one = run({ OMP_NUM_THREADS: '1' });
  t.is(one.status, 0, one.stderr);
  t.is(one.stdout.trim(), '1');
  const three = run({ OMP_NUM_THREADS: '3' });
  t.is(three.stdout.trim(), '3', three.stderr);
});

test('GNU OpenMP spins briefly (GOMP_SPINCOUNT=1000) unless the user chose a spin count or wait policy', (t) => {
  const probe = "await import('./lib/index.ts'); console.log(JSON.stringify([process.env.GOMP_SPINCOUNT ?? null, process.env.OMP_WAIT_POLICY ?? null]));";
  const run = (env: Record<string, string>) => {
    const base = { ...process.env };
    delete base.GOMP_SPINCOUNT; // this test process imported the package too
    delete base.OMP_WAIT_POLICY;
    const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', probe], { encoding: 'utf8', env: { ...base, ...env } });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as [string | null, string | null];
  };
  t.deepEqual(run({}), ['1000', null]);
  t.deepEqual(run({ GOMP_SPINCOUNT: '300000' }), ['300000', null]);
  t.deepEqual(run({ OMP_WAIT_POLICY: 'ACTIVE' }), [null, 'ACTIVE']);
});

test.serial('a worker thread that loads the addon (the streaming JPEG path) keeps the application\'s thread count', async (t) => {
  const { getNumThreads, setNumThreads } = await import('../lib/index.ts');
  const { Worker } = await import('node:worker_threads');
  const before = getNumThreads();
  const wanted = before === 1 ? 2 : 1;
  setNumThreads(wanted);
  try {
    await new Promise<void>((resolve, reject) => {
      // With OMP_NUM_THREADS in its environment, a worker re-applying the default would set that.
      const worker = new Worker(new URL('./helpers/worker-load-native.mjs', import.meta.url), { env: { ...process.env, OMP_NUM_THREADS: String(wanted + 1) } });
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
    });
    t.is(getNumThreads(), wanted);
  } finally {
    setNumThreads(before);
  }
});
