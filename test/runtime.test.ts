// Process-wide runtime facts and the intra-op thread setting.
import test from 'ava';
import { availableParallelism } from 'node:os';
import { cudaAvailable, cudaDeviceCount, getNumThreads, InvalidArgumentError, libtorchVersion, resnet18, setNumThreads } from '../lib/index.ts';
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
  t.deepEqual([...one.data].map((v) => v.toFixed(4)), [...many.data].map((v) => v.toFixed(4)));
  // Several models at once share the threads instead of each taking them all.
  setNumThreads(before);
  const others = await Promise.all([resnet18({ seed: 0, numClasses: 4 }), resnet18({ seed: 0, numClasses: 4 })]);
  const outs = await Promise.all(others.map((m) => m.forward(x)));
  for (const out of outs) t.deepEqual([...out.data].map((v) => v.toFixed(4)), [...many.data].map((v) => v.toFixed(4)));
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
