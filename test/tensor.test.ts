import test from 'ava';
import { InvalidArgumentError, ShapeError, Tensor } from '../lib/index.ts';

test('dtype follows the TypedArray', (t) => {
  t.is(new Tensor(new Float32Array(6), [2, 3]).dtype, 'float32');
  t.is(new Tensor(new Float64Array(1), [1]).dtype, 'float64');
  t.is(new Tensor(new BigInt64Array(1), []).dtype, 'int64');
  t.is(new Tensor(new Int32Array(2), [2]).dtype, 'int32');
  t.is(new Tensor(new Uint8Array(2), [2]).dtype, 'uint8');
  t.is(new Tensor(new Uint8Array(2), [2], 'bool').dtype, 'bool');
  t.is(new Tensor(new Uint16Array(2), [2], 'bfloat16').dtype, 'bfloat16');
});

test('shape, numel and ndim; the shape is frozen', (t) => {
  const x = new Tensor(new Float32Array(24), [2, 3, 4]);
  t.is(x.numel, 24);
  t.is(x.ndim, 3);
  t.true(Object.isFrozen(x.shape));
  t.is(new Tensor(new Float32Array(1), []).numel, 1);
});

test('Tensor.from accepts { data, shape } and returns a Tensor unchanged', (t) => {
  const x = new Tensor(new Float32Array(4), [4]);
  t.is(Tensor.from(x), x);
  t.deepEqual(Tensor.from({ data: new Float32Array(4), shape: [2, 2] }).shape, [2, 2]);
});

test('bad tensors are rejected with what was expected and what came', (t) => {
  t.throws(() => new Tensor(new Float32Array(5), [2, 3]), {
    instanceOf: ShapeError,
    message: 'Expected 6 elements for tensor data of shape [2, 3] but received 5',
  });
  t.throws(() => new Tensor(new Uint16Array(2), [2]), {
    instanceOf: InvalidArgumentError,
    message: "Expected a dtype for tensor data of type Uint16Array ('float16' or 'bfloat16') but received none",
  });
  t.throws(() => new Tensor(new Int32Array(2), [2], 'float32'), {
    message: 'Expected Float32Array for tensor data of dtype float32 but received Int32Array(2) [ 0, 0 ] of type object',
  });
  t.throws(() => new Tensor(new Float32Array(2), [2], 'complex64' as 'float32'), {
    message: "Expected one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool for tensor dtype but received 'complex64' of type string",
  });
  t.throws(() => new Tensor(new Float32Array(2), [2.5] as number[]), {
    message: 'Expected an array of non-negative integers for tensor shape but received [ 2.5 ] of type object',
  });
});

// Hardening: a dtype is looked up among the table's own names only. 'constructor' used to find
// Object and make a tensor that saveWeights wrote into a file nobody could load.
test('dtype names that every object inherits are rejected like any unknown dtype', async (t) => {
  for (const dtype of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    const error = t.throws(() => new Tensor(new Float32Array(2), [2], dtype as 'float32'), { instanceOf: InvalidArgumentError }, dtype);
    t.regex(error.message, new RegExp(`^Expected one of float32, .* for tensor dtype but received '${dtype}' of type string$`));
    t.throws(() => Tensor.from({ data: new Float32Array(2), shape: [2], dtype: dtype as 'float32' }), { instanceOf: InvalidArgumentError });
  }
  const { saveWeights } = await import('../lib/index.ts');
  await t.throwsAsync(saveWeights('/tmp/never-written.safetensors', { w: { data: new Float32Array(1), shape: [1], dtype: 'constructor' as 'float32' } } as never), { instanceOf: InvalidArgumentError });
});

test.serial('a tensor over a SharedArrayBuffer (e.g. from a worker) goes through forward, training and loadStateDict', async (t) => {
  const { resnet20 } = await import('../lib/index.ts');
  const model = await resnet20({ seed: 0 });
  t.teardown(() => model.dispose());
  const shared = new Float32Array(new SharedArrayBuffer(2 * 3 * 32 * 32 * 4));
  for (let i = 0; i < shared.length; i++) shared[i] = Math.cos(i);
  const plain = new Float32Array(shared);
  const [a, b] = [await model.forward(new Tensor(shared, [2, 3, 32, 32])), await model.forward(new Tensor(plain, [2, 3, 32, 32]))];
  t.deepEqual(Array.from(a.data), Array.from(b.data));
  const labels = new BigInt64Array(new SharedArrayBuffer(16));
  labels.set([1n, 2n]);
  const step = await model.trainer({ optimizer: { type: 'sgd', lr: 0.01 } }).step(new Tensor(shared, [2, 3, 32, 32]), new Tensor(labels, [2]));
  t.true(Number.isFinite(step.loss));
  const fc = (await model.stateDict())['fc.bias']!;
  const sharedBias = new Float32Array(new SharedArrayBuffer(fc.data.byteLength));
  sharedBias.set(fc.data as Float32Array);
  await t.notThrowsAsync(model.loadStateDict({ 'fc.bias': new Tensor(sharedBias, fc.shape) }, { strict: false }));
});
