// Process-wide runtime facts and the intra-op thread setting.
import test from 'ava';
import { availableParallelism } from 'node:os';
import { spawnSync } from 'node:child_process';
import { allocatorTuning, cudaAvailable, cudaDeviceCount, getNumThreads, InvalidArgumentError, libtorchVersion, resnet18, setNumThreads } from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';

test.serial('defaults to the physical cores, at most the CPUs this process may use', (t) => {
  const threads = getNumThreads();
  t.true(threads >= 1 && threads <= availableParallelism(), `${threads} threads`);
});

test.serial('setNumThreads changes it for later jobs; models still compute the same numbers', async (t) => {
  const before = getNumThreads();
  const model = await resnet18({ seed: 0, numClasses: 4 });
  const x = randomTensor([2, 3, 32, 32]);
  const many = await model.forward(x);
  setNumThreads(1);
  t.is(getNumThreads(), 1);
  const one = await model.forward(x);
  const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)));
  t.true(close(one.data, many.data), 'one thread: the same logits within float32 summation-order noise');
  // Several models at once share the threads instead of each taking them all.
  setNumThreads(before);
  const others = await Promise.all([resnet18({ seed: 0, numClasses: 4 }), resnet18({ seed: 0, numClasses: 4 })]);
  const outs = await Promise.all(others.map((m) => m.forward(x)));
  for (const out of outs) t.true(close(out.data, many.data));
  for (const m of [model, ...others]) m.dispose();
});

test('setNumThreads validates', (t) => {
  t.throws(() => setNumThreads(0), { instanceOf: InvalidArgumentError, message: 'Expected positive integer for threads but received 0 of type number' });
});

test('version and CUDA facts of this build', (t) => {
  t.regex(libtorchVersion(), /^\d+\.\d+\.\d+/);
  t.is(typeof cudaAvailable(), 'boolean');
  t.is(cudaDeviceCount() > 0, cudaAvailable());
});

/** allocatorTuning() as a fresh process with this environment sees it (tuning happens at load). */
function tuningWith(env: Record<string, string>): string {
  const script = "import('./lib/index.ts').then((m) => process.stdout.write(m.allocatorTuning()))";
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const name of ['LIBTORCH_RESNET_MALLOC', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_ARENA_MAX', 'GLIBC_TUNABLES']) {
    if (!(name in env)) delete childEnv[name];
  }
  const r = spawnSync(process.execPath, ['--import=tsx', '-e', script], { env: childEnv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return r.stdout;
}

test('the addon tunes glibc malloc at load, unless told not to', (t) => {
  // This machine runs glibc (Debian); the tuning is what keeps training steps off fresh pages.
  t.is(tuningWith({}), 'glibc: mmap threshold 32 MiB, trim threshold 2 GiB, top pad 256 MiB');
  t.is(tuningWith({ LIBTORCH_RESNET_MALLOC: 'default' }), 'glibc defaults (LIBTORCH_RESNET_MALLOC=default)');
  t.is(tuningWith({ MALLOC_ARENA_MAX: '2' }), "the environment's (MALLOC_ARENA_MAX is set)");
  t.is(tuningWith({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1000000' }), "the environment's (GLIBC_TUNABLES sets glibc.malloc)");
  t.regex(allocatorTuning(), /^(glibc|the environment's)/);
});
