// stateDict() / loadStateDict(): torchvision's names, strict and non-strict loads, PyTorch's
// wording for every failure, and a failed load leaves the model untouched.
import test from 'ava';
import { resnet18, Tensor, WeightsError, type ResNet, type StateDict } from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';
import { pytorchMessages } from './helpers/fixtures.ts';

// PyTorch's own texts for the same mistakes (written by test/fixtures/generate.py).
const torchSays = pytorchMessages();

let model: ResNet;
let original: StateDict;
test.before(async () => {
  model = await resnet18({ numClasses: 10, seed: 4 });
  original = await model.stateDict();
});
test.after.always(() => model.dispose());

function without(sd: StateDict, ...keys: string[]): StateDict {
  const out = { ...sd };
  for (const key of keys) delete out[key];
  return out;
}

test.serial('keys follow torchvision, num_batches_tracked included, as int64', (t) => {
  const keys = Object.keys(original);
  t.is(keys.length, 122);
  t.deepEqual(keys.slice(0, 6), ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
  t.true(keys.includes('layer2.0.downsample.0.weight'));
  t.true(keys.includes('layer2.0.downsample.1.running_var'));
  t.deepEqual(keys.slice(-2), ['fc.weight', 'fc.bias']);
  t.is(original['bn1.num_batches_tracked']!.dtype, 'int64');
  t.deepEqual(original['bn1.num_batches_tracked']!.shape, []);
  t.deepEqual(original['fc.weight']!.shape, [10, 512]);
});

test.serial('stateDict() returns copies: training later does not change them', async (t) => {
  const sd = await model.stateDict();
  const snapshot = [...(sd['bn1.running_mean']!.data as Float32Array)];
  await model.train();
  await model.forward(randomTensor([2, 3, 32, 32]));
  await model.eval();
  t.deepEqual([...(sd['bn1.running_mean']!.data as Float32Array)], snapshot);
  await model.loadStateDict(original);
});

test.serial('round trip: a loaded state dict gives the same outputs', async (t) => {
  const other = await resnet18({ numClasses: 10, seed: 99 });
  const x = randomTensor([1, 3, 32, 32]);
  t.notDeepEqual([...(await other.forward(x)).data], [...(await model.forward(x)).data]);
  t.deepEqual(await other.loadStateDict(original), { missingKeys: [], unexpectedKeys: [] });
  t.deepEqual([...(await other.forward(x)).data], [...(await model.forward(x)).data]);
  other.dispose();
});

test.serial('strict load names missing and unexpected keys in PyTorch words', async (t) => {
  const sd = { ...without(original, 'fc.weight', 'fc.bias'), 'head.weight': original['fc.weight']! };
  const error = await t.throwsAsync(model.loadStateDict(sd), { instanceOf: WeightsError });
  t.is(
    error?.message,
    'Error(s) in loading state_dict for ResNet:\n' +
      '\tMissing key(s) in state_dict: "fc.weight", "fc.bias". \n' +
      '\tUnexpected key(s) in state_dict: "head.weight". ',
  );
  t.is(error?.message, torchSays.missing_and_unexpected);
  t.is(error?.code, 'ERR_RESNET_WEIGHTS');
});

test.serial('non-strict load reports missing and unexpected keys and loads the rest', async (t) => {
  const target = await resnet18({ numClasses: 10, seed: 5 });
  const sd = { ...without(original, 'fc.bias'), extra: new Tensor(new Float32Array(1), [1]) };
  const result = await target.loadStateDict(sd, { strict: false });
  t.deepEqual(result, { missingKeys: ['fc.bias'], unexpectedKeys: ['extra'] });
  const loaded = await target.stateDict();
  t.deepEqual([...(loaded['conv1.weight']!.data as Float32Array)], [...(original['conv1.weight']!.data as Float32Array)]);
  t.notDeepEqual([...(loaded['fc.bias']!.data as Float32Array)], [...(original['fc.bias']!.data as Float32Array)]);
  target.dispose();
});

test.serial('a size mismatch fails even when not strict, and nothing is loaded', async (t) => {
  const target = await resnet18({ numClasses: 10, seed: 6 });
  const before = await target.stateDict();
  const sd = { ...original, 'fc.weight': new Tensor(new Float32Array(1000 * 512), [1000, 512]) };
  const error = await t.throwsAsync(target.loadStateDict(sd, { strict: false }), { instanceOf: WeightsError });
  t.is(
    error?.message,
    'Error(s) in loading state_dict for ResNet:\n' +
      '\tsize mismatch for fc.weight: copying a param with shape torch.Size([1000, 512]) from checkpoint, the shape in current model is torch.Size([10, 512]).',
  );
  t.is(error?.message, torchSays.size_mismatch);
  const after = await target.stateDict();
  t.deepEqual([...(after['conv1.weight']!.data as Float32Array)], [...(before['conv1.weight']!.data as Float32Array)]);
  target.dispose();
});

test.serial('dtypes: float64 weights are cast like PyTorch copy_, a float into an int64 buffer is refused', async (t) => {
  const target = await resnet18({ numClasses: 10, seed: 8 });
  const w = original['fc.bias']!.data as Float32Array;
  const asDouble = new Tensor(Float64Array.from(w), [10]);
  await target.loadStateDict({ ...original, 'fc.bias': asDouble });
  t.deepEqual([...((await target.stateDict())['fc.bias']!.data as Float32Array)], [...w]);

  const error = await t.throwsAsync(
    target.loadStateDict({ ...original, 'bn1.num_batches_tracked': new Tensor(new Float32Array([1]), []) }),
    { instanceOf: WeightsError },
  );
  t.regex(error!.message, /dtype mismatch for bn1\.num_batches_tracked: copying a param with dtype float32 from checkpoint, the dtype in current model is int64\./);
  target.dispose();
});

test.serial('checkpoints without num_batches_tracked (pre-1.0 files) load, with the counters at 0', async (t) => {
  const target = await resnet18({ numClasses: 10, seed: 9 });
  await target.train();
  await target.forward(randomTensor([2, 3, 32, 32]));
  const old = Object.fromEntries(Object.entries(original).filter(([k]) => !k.endsWith('num_batches_tracked')));
  t.deepEqual(await target.loadStateDict(old), { missingKeys: [], unexpectedKeys: [] });
  t.is(((await target.stateDict())['bn1.num_batches_tracked']!.data as BigInt64Array)[0], 0n);
  target.dispose();
});

test.serial('bad arguments are InvalidArgumentErrors', async (t) => {
  await t.throwsAsync(model.loadStateDict(null as unknown as StateDict), {
    message: 'Expected an object for stateDict but received null of type null',
  });
  await t.throwsAsync(model.loadStateDict(original, { strict: 'yes' as unknown as boolean }), {
    message: "Expected boolean for strict but received 'yes' of type string",
  });
  await t.throwsAsync(model.loadStateDict(original, { stric: true } as never), {
    message: "Unknown option 'stric' for loadStateDict; expected one of: strict, exclude",
  });
});
