// forward(): input checks, output shape and dtype, eval vs train mode, results owned by JS.
import test from 'ava';
import { InvalidArgumentError, resnet18, ShapeError, Tensor, type ResNet } from '../lib/index.ts';
import { maxAbsDiff, randomTensor } from './helpers/inputs.ts';

let model: ResNet;
test.before(async () => {
  model = await resnet18({ numClasses: 10, seed: 3 });
});
test.after.always(() => model.dispose());

test('returns float32 logits [N, numClasses]', async (t) => {
  const out = await model.forward(randomTensor([3, 3, 40, 48]));
  t.true(out instanceof Tensor);
  t.is(out.dtype, 'float32');
  t.deepEqual(out.shape, [3, 10]);
  t.true(out.data instanceof Float32Array);
  t.is(out.data.length, 30);
  t.true(out.data.every(Number.isFinite));
});

test('accepts { data, shape } as well as a Tensor, with the same result', async (t) => {
  const x = randomTensor([1, 3, 32, 32], 5);
  const a = await model.forward(x);
  const b = await model.forward({ data: x.data, shape: [...x.shape] });
  t.deepEqual([...a.data], [...b.data]);
});

test('the input buffer is copied: changing it after the call does not change the result', async (t) => {
  const x = randomTensor([1, 3, 32, 32], 9);
  const expected = await model.forward(x);
  const pending = model.forward(x);
  x.data.fill(100);
  t.deepEqual([...(await pending).data], [...expected.data]);
});

test('each sample is independent of the others in eval mode', async (t) => {
  const x = randomTensor([2, 3, 32, 32], 11);
  const both = await model.forward(x);
  const first = await model.forward(new Tensor(x.data.slice(0, 3 * 32 * 32), [1, 3, 32, 32]));
  t.true(maxAbsDiff(both.data.subarray(0, 10), first.data) < 1e-5);
});

const badInputs: Array<[string, unknown, new (...args: never[]) => Error, string]> = [
  ['rank 3', { data: new Float32Array(3 * 8 * 8), shape: [3, 8, 8] }, ShapeError, 'Expected shape [N, 3, H, W] with N, H, W >= 1 for input but received [3, 8, 8]'],
  ['1 channel', { data: new Float32Array(8 * 8), shape: [1, 1, 8, 8] }, ShapeError, 'Expected shape [N, 3, H, W] with N, H, W >= 1 for input but received [1, 1, 8, 8]'],
  ['empty batch', { data: new Float32Array(0), shape: [0, 3, 8, 8] }, ShapeError, 'Expected shape [N, 3, H, W] with N, H, W >= 1 for input but received [0, 3, 8, 8]'],
  ['wrong length', { data: new Float32Array(10), shape: [1, 3, 8, 8] }, ShapeError, 'Expected 192 elements for tensor data of shape [1, 3, 8, 8] but received 10'],
  ['float64 data', { data: new Float64Array(192), shape: [1, 3, 8, 8] }, InvalidArgumentError, 'Expected a float32 tensor for input but received a float64 tensor'],
  ['an array', { data: [1, 2, 3], shape: [1, 3, 1, 1] }, InvalidArgumentError, 'Expected a TypedArray for tensor data but received [ 1, 2, 3 ] of type object'],
  ['a bad shape', { data: new Float32Array(4), shape: [2, -2] }, InvalidArgumentError, 'Expected an array of non-negative integers for tensor shape but received [ 2, -2 ] of type object'],
  ['null', null, InvalidArgumentError, 'Expected a Tensor or { data, shape } for tensor but received null of type null'],
];

for (const [title, input, ErrorClass, message] of badInputs) {
  test(`rejects ${title}`, async (t) => {
    const error = await t.throwsAsync(model.forward(input as Tensor), { instanceOf: ErrorClass });
    t.is(error?.message, message);
  });
}

test('train mode uses batch statistics and updates running stats; eval mode does not', async (t) => {
  const m = await resnet18({ numClasses: 4, seed: 1 });
  const x = randomTensor([4, 3, 32, 32], 2);
  const before = (await m.stateDict())['bn1.running_mean']!.data as Float32Array;
  const evalOut = await m.forward(x);
  t.deepEqual([...((await m.stateDict())['bn1.running_mean']!.data as Float32Array)], [...before]);
  await m.train();
  t.true(m.training);
  const trainOut = await m.forward(x);
  t.true(maxAbsDiff(evalOut.data, trainOut.data) > 1e-3, 'train-mode logits differ from eval-mode logits');
  const sd = await m.stateDict();
  t.true(maxAbsDiff(sd['bn1.running_mean']!.data as Float32Array, before) > 0);
  t.is((sd['bn1.num_batches_tracked']!.data as BigInt64Array)[0], 1n);
  await m.eval();
  t.false(m.training);
  m.dispose();
});

test('a CUDA-less build reports no CUDA through model.to()', async (t) => {
  const m = await resnet18({ numClasses: 2, seed: 0 });
  await t.throwsAsync(m.to('cuda:0'), { code: 'ERR_RESNET_DEVICE' });
  await m.to('cpu');
  t.is(m.device, 'cpu');
  m.dispose();
});

test('the binding checks shapes itself: an overflowing or mismatched shape is a typed error, never an allocation', async (t) => {
  // lib/ validates first; this goes around it, as a caller of the raw binding would.
  const { native } = await import('../lib/native.ts');
  const spec = {
    block: 'basic', stem: 'cifar', shortcut: 'A', widths: [16, 32, 64], layers: [1, 1, 1], numClasses: 3,
    zeroInitResidual: false, groups: 1, widthPerGroup: 64, inChannels: 3, replaceStrideWithDilation: [false, false],
  };
  const model = await native.createModel(spec as never, 'cpu', 0);
  const overflowing = { dtype: 'float32', shape: [2 ** 52, 2 ** 10, 4, 1], data: new Float32Array(0) } as never;
  t.throws(() => model.forward(overflowing), { code: 'ERR_RESNET_INVALID_ARGUMENT', message: /fits in memory/ } as never);
  const short = { dtype: 'float32', shape: [1, 3, 8, 8], data: new Float32Array(10) } as never;
  t.throws(() => model.forward(short), { code: 'ERR_RESNET_INVALID_ARGUMENT', message: /Expected 768 bytes of data for input but received 40/ } as never);
  const empty = { dtype: 'float32', shape: [1, 3, 0, 8], data: new Float32Array(0) } as never;
  await t.throwsAsync(model.forward(empty), { code: 'ERR_RESNET_SHAPE', message: /N, H, W >= 1/ } as never);
  await model.dispose();
});

// Serial, as the next one: their models' jobs would share the threads with the other tests' forwards,
// which compare results bit for bit.
// Hardening: NaN and infinite inputs used to give plausible finite logits on the fused engines (an
// all-NaN batch answered exactly the all-zero batch's logits). They are refused on every path.
test.serial('non-finite inputs are an InvalidArgumentError on every engine, in training and for features', async (t) => {
  const model = await resnet18({ numClasses: 10, seed: 3 });
  const cases: Array<[string, (x: Float32Array) => void, RegExp]> = [
    ['all NaN', (x) => x.fill(Number.NaN), /received NaN at \[0, 0, 0, 0\]$/],
    ['one NaN', (x) => (x[((1 * 3 + 2) * 24 + 5) * 24 + 7] = Number.NaN), /received NaN at \[1, 2, 5, 7\]$/],
    ['+Infinity', (x) => (x[24 * 24 + 3] = Number.POSITIVE_INFINITY), /received Infinity at \[0, 1, 0, 3\]$/],
    ['-Infinity', (x) => (x[2 * 3 * 24 * 24 - 1] = Number.NEGATIVE_INFINITY), /received -Infinity at \[1, 2, 23, 23\]$/],
  ];
  for (const engine of ['auto', 'torchscript', 'none'] as const) {
    await model.setInferenceEngine(engine);
    for (const [name, spoil, message] of cases) {
      const x = randomTensor([2, 3, 24, 24], 5);
      spoil(x.data as Float32Array);
      await t.throwsAsync(model.forward(x), { instanceOf: InvalidArgumentError, message }, `${engine}: ${name}`);
    }
  }
  const x = randomTensor([2, 3, 24, 24], 5);
  (x.data as Float32Array)[100] = Number.NaN;
  await t.throwsAsync(model.features(x, { layers: ['layer1'] }), { instanceOf: InvalidArgumentError, message: /^Expected finite input values/ });
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.1 } });
  const before = await model.stateDict();
  await t.throwsAsync(trainer.step(x, new BigInt64Array([1n, 2n])), { instanceOf: InvalidArgumentError, message: /^Expected finite input values/ });
  t.deepEqual(await model.stateDict(), before); // the refused step changed nothing
  // Finite extremes are fine.
  const big = randomTensor([1, 3, 24, 24], 6);
  (big.data as Float32Array)[0] = 3.4e38;
  t.deepEqual((await model.forward(big)).shape, [1, 10]);
  model.dispose();
});

// Hardening: a batch of 4096 x 3 x 224 x 224 made the oneDNN engine fail, 'auto' fall back for good,
// and the fallback grow past 17 GB. The engine refuses a batch whose activations exceed its bound,
// and keeps being the engine for batches that fit.
test.serial('the oneDNN engine refuses a batch over maxActivationBytes and stays the engine', async (t) => {
  const { onednnEngineCompiled } = await import('../lib/index.ts');
  const own = await resnet18({ numClasses: 10, seed: 4 });
  await own.setInferenceEngine('auto', { maxActivationBytes: 4 * 1024 * 1024 });
  if (!onednnEngineCompiled()) {
    // Builds without the oneDNN engine have no activation planner to bound; 'auto' is TorchScript there.
    t.is(await own.inferenceEngine(), 'torchscript');
    own.dispose();
    return;
  }
  const error = await t.throwsAsync(own.forward(randomTensor([16, 3, 96, 96], 1)), { instanceOf: InvalidArgumentError });
  t.regex(error!.message, /^Expected a batch whose activations fit in the inference engine's limit of 4 MiB \(maxActivationBytes\) but a batch of 16 needs \d+ MiB; split it into smaller batches$/);
  t.deepEqual((await own.forward(randomTensor([1, 3, 32, 32], 2))).shape, [1, 10]);
  t.is(await own.inferenceEngine(), 'onednn');
  await t.throwsAsync(own.setInferenceEngine('auto', { maxActivationBytes: 0 }), { instanceOf: InvalidArgumentError, message: /options\.maxActivationBytes/ });
  own.dispose();
});
