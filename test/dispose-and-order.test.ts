// One job at a time per model, in call order; dispose() lets the running job finish, rejects the
// queued ones and every later call with DisposedError, and can be called twice.
import test from 'ava';
import { DisposedError, resnet18, resnet50, type Tensor } from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';

test('calls run in call order', async (t) => {
  const model = await resnet18({ numClasses: 10, seed: 1 });
  const a = await model.stateDict();
  const other = await resnet18({ numClasses: 10, seed: 2 });
  const b = await other.stateDict();
  other.dispose();
  const x = randomTensor([1, 3, 32, 32]);
  const expectedA = [...(await model.forward(x)).data];

  // Queued without awaiting: each forward must see the weights loaded just before it.
  const settled: string[] = [];
  const loadB = model.loadStateDict(b).then(() => settled.push('loadB'));
  const underB = model.forward(x).then((r) => (settled.push('forwardB'), r));
  const loadA = model.loadStateDict(a).then(() => settled.push('loadA'));
  const underA = model.forward(x).then((r) => (settled.push('forwardA'), r));
  const [, outB, , outA] = await Promise.all([loadB, underB, loadA, underA]);
  t.deepEqual(settled, ['loadB', 'forwardB', 'loadA', 'forwardA']);
  t.deepEqual([...outA.data], expectedA);
  t.notDeepEqual([...outB.data], expectedA);

  const order: number[] = [];
  await Promise.all(Array.from({ length: 12 }, (_, i) => model.forward(randomTensor([1, 3, 16, 16], i)).then(() => order.push(i))));
  t.deepEqual(order, [...Array(12).keys()]);
  model.dispose();
});

test('dispose: a job in flight finishes, queued jobs and later calls reject, in call order', async (t) => {
  const model = await resnet50({ numClasses: 10, seed: 0 });
  // No clock: when the first job's result reaches JavaScript, the executor thread has usually
  // taken the second already (it does so right after posting the first's result). Whether it has
  // or not, the rules below hold: the calls that ran are a prefix of the call order, each ran to
  // its end, and every other call rejects with DisposedError; none is left pending.
  const first = model.forward(randomTensor([4, 3, 160, 160], 1));
  const inFlight = model.forward(randomTensor([4, 3, 160, 160]));
  await first;
  const calls: Array<Promise<unknown>> = [inFlight, model.forward(randomTensor([1, 3, 32, 32])), model.stateDict(), model.train()];
  model.dispose();
  t.true(model.disposed);

  const settled = await Promise.allSettled(calls);
  const ran = settled.map((r) => r.status === 'fulfilled');
  const firstRefused = ran.indexOf(false);
  t.true(firstRefused >= 0, 'the calls queued behind the one in flight were refused');
  t.true(ran.slice(firstRefused).every((r) => !r), `the calls that ran are a prefix of the call order: ${ran.join(', ')}`);
  t.true(firstRefused <= 1, 'nothing queued behind the job in flight ran after dispose()');
  t.log(ran[0] ? 'the second forward was in flight and finished' : 'the executor had not taken the second forward yet: it was refused');
  if (ran[0]) {
    const out = (settled[0] as PromiseFulfilledResult<Tensor>).value;
    t.deepEqual(out.shape, [4, 10]);
    t.true(out.data.every(Number.isFinite));
  }
  for (const r of settled.slice(firstRefused)) {
    const error = (r as PromiseRejectedResult).reason as DisposedError;
    t.true(error instanceof DisposedError);
    t.is(error.message, 'The model was disposed before this call could run');
    t.is(error.code, 'ERR_RESNET_DISPOSED');
  }
  await t.throwsAsync(model.forward(randomTensor([1, 3, 32, 32])), {
    instanceOf: DisposedError,
    message: 'The model has been disposed',
  });
  await t.throwsAsync(model.eval(), { instanceOf: DisposedError });
  t.notThrows(() => model.dispose());
});

test('results stay valid after the model is disposed (they own their memory)', async (t) => {
  const model = await resnet18({ numClasses: 10, seed: 1 });
  const out = await model.forward(randomTensor([2, 3, 32, 32]));
  const sd = await model.stateDict();
  const copy = [...out.data];
  model.dispose();
  t.deepEqual([...out.data], copy);
  t.is((sd['fc.weight']!.data as Float32Array).length, 5120);
});

test('using: Symbol.dispose disposes', async (t) => {
  let escaped;
  {
    const model = await resnet18({ numClasses: 2, seed: 0 });
    escaped = model;
    model[Symbol.dispose]();
  }
  t.true(escaped.disposed);
});

test('a process that ends with models never disposed exits cleanly', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const script = new URL('./helpers/exit-with-live-models.ts', import.meta.url).pathname;
  for (let i = 0; i < 3; i++) {
    const child = spawnSync(process.execPath, ['--import=tsx', script], { encoding: 'utf8' });
    t.is(child.status, 0, `run ${i}: exit ${child.status} signal ${child.signal} ${child.stderr}`);
    t.is(child.stdout.trim(), 'done');
  }
});
