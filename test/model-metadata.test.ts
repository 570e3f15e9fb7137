// A saved model's description (architecture, classes, preprocessing): written by save() into
// safetensors metadata or a .pth sidecar, restored by load() and loadModel(), refused when damaged;
// and the training-loop features of the fine-tuning workflow (early stopping, splits, aborts).
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortedError,
  createResNet,
  evaluate,
  fit,
  ImageDataset,
  InvalidArgumentError,
  loadModel,
  metadataKey,
  randomSplit,
  readSafetensors,
  resnet18,
  resnet20,
  Tensor,
  WeightsError,
  writeSafetensors,
  type StateDict,
} from '../lib/index.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'resnet-metadata-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const classes = ['ant', 'bee', 'cat'];
const preprocessing = { fit: 'cover' as const, crop: 24, mean: [0.4, 0.5, 0.6] as const, std: [0.2, 0.25, 0.3] as const };
const input = () => {
  const data = new Float32Array(2 * 3 * 24 * 24);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  return new Tensor(data, [2, 3, 24, 24]);
};
const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const described = async () => (await resnet20({ numClasses: 3, shortcut: 'B', seed: 5 })).setClasses(classes).setPreprocessing(preprocessing);

for (const ext of ['safetensors', 'pth']) {
  test.serial(`save() + loadModel(): a .${ext} file rebuilds the same model with its classes and preprocessing`, async (t) => {
    const model = await described();
    const path = join(tmp, `described.${ext}`);
    await model.save(path);
    const loaded = await loadModel(path);
    t.teardown(() => (model.dispose(), loaded.dispose()));
    t.is(loaded.arch, 'resnet20');
    t.is(loaded.config.shortcut, 'B');
    t.is(loaded.config.numClasses, 3);
    t.deepEqual(loaded.classes, classes);
    t.deepEqual(loaded.preprocessing, preprocessing);
    t.true(bytes(await loaded.forward(input())).equals(bytes(await model.forward(input()))));
    if (ext === 'pth') {
      // The archive holds the state dict only (PyTorch users load it as usual); the description is beside it.
      const sidecar = JSON.parse(await readFile(`${path}.json`, 'utf8')) as { arch: string; classes: string[] };
      t.is(sidecar.arch, 'resnet20');
      t.deepEqual(sidecar.classes, classes);
    } else {
      const { metadata } = await readSafetensors(path);
      t.is(metadata.format, 'pt');
      t.is(JSON.parse(metadata[metadataKey]!).arch, 'resnet20');
    }
  });
}

test('load() into a built model adopts the classes when its head has their number, and not otherwise', async (t) => {
  const source = await described();
  const path = join(tmp, 'adopt.safetensors');
  await source.save(path);
  const same = await resnet20({ numClasses: 3, shortcut: 'B', seed: 1 });
  const other = await resnet20({ numClasses: 5, shortcut: 'B', seed: 1 });
  t.teardown(() => (source.dispose(), same.dispose(), other.dispose()));
  t.is(same.classes, null);
  await same.load(path);
  t.deepEqual(same.classes, classes);
  t.deepEqual(same.preprocessing, preprocessing);
  await other.load(path, { exclude: ['fc'] });
  t.is(other.classes, null);
  const names = await same.classify(await sharpImage(), { topk: 3 });
  t.deepEqual(names[0]!.map((p) => p.label).sort(), [...classes].sort());
});

async function sharpImage(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 100, b: 50 } } }).png().toBuffer();
}

test('a random model has no classes or preprocessing until they are set', async (t) => {
  const model = await resnet18({ numClasses: 4, seed: 0 });
  t.teardown(() => model.dispose());
  t.is(model.classes, null);
  t.is(model.preprocessing, null);
  model.setClasses(['a', 'b', 'c', 'd']);
  t.deepEqual(model.classes, ['a', 'b', 'c', 'd']);
  model.setClasses(null);
  t.is(model.classes, null);
});

test('a damaged description fails the load with a WeightsError and leaves the model untouched', async (t) => {
  const model = await described();
  const path = join(tmp, 'good.safetensors');
  await model.save(path);
  const { tensors, metadata } = await readSafetensors(path);
  const good = JSON.parse(metadata[metadataKey]!) as Record<string, unknown>;
  const cases: Array<[string, string]> = [
    ['{not json', 'it is not JSON'],
    [JSON.stringify({ ...good, version: 9 }), 'expected version 1, found 9'],
    [JSON.stringify({ ...good, classes: ['one'] }), 'expected "classes" to be 3 strings'],
    [JSON.stringify({ ...good, preprocess: { crop: -1 } }), '"preprocess": Expected positive integer for crop'],
    [JSON.stringify({ ...good, structure: { ...(good.structure as object), layers: [3, 3] } }), '"structure": Expected an array of 3 positive integers for layers'],
    [JSON.stringify({ ...good, extra: 1 }), "unknown entries 'extra'"],
  ];
  const target = await resnet20({ numClasses: 3, shortcut: 'B', seed: 9 });
  t.teardown(() => (model.dispose(), target.dispose()));
  const before = bytes((await target.stateDict())['fc.weight']!);
  for (const [text, message] of cases) {
    const bad = join(tmp, 'bad.safetensors');
    await writeSafetensors(bad, tensors, { ...metadata, [metadataKey]: text });
    const error = await t.throwsAsync(loadModel(bad), { instanceOf: WeightsError });
    t.true(error.message.startsWith(`The model description in '${bad}' is damaged: `), error.message);
    t.true(error.message.includes(message), error.message);
    await t.throwsAsync(target.load(bad), { instanceOf: WeightsError });
    t.true(bytes((await target.stateDict())['fc.weight']!).equals(before));
    t.is(target.classes, null);
  }
  // A .pth sidecar is read the same way.
  await model.save(join(tmp, 'side.pth'));
  await writeFile(join(tmp, 'side.pth.json'), '[]');
  await t.throwsAsync(loadModel(join(tmp, 'side.pth')), { instanceOf: WeightsError, message: /damaged: expected a JSON object/ });
});

test('loadModel() of a file without a description says what to do instead', async (t) => {
  const model = await resnet20({ seed: 0 });
  t.teardown(() => model.dispose());
  const path = join(tmp, 'bare.safetensors');
  await writeSafetensors(path, await model.stateDict());
  const error = await t.throwsAsync(loadModel(path), { instanceOf: WeightsError });
  t.regex(error.message, /has no model description .* call model\.load\(/);
  await t.throwsAsync(loadModel(join(tmp, 'missing.safetensors')), { instanceOf: WeightsError, message: /Cannot read weights file/ });
  await t.throwsAsync(loadModel(path, { weights: 'x' } as never), { instanceOf: InvalidArgumentError, message: /Unknown option 'weights'/ });
});

test('setClasses() and setPreprocessing() check what they get', async (t) => {
  const model = await resnet20({ numClasses: 3, seed: 0 });
  const gray = await resnet20({ numClasses: 3, inChannels: 1, seed: 0 });
  t.teardown(() => (model.dispose(), gray.dispose()));
  t.throws(() => model.setClasses(['a', 'b']), { instanceOf: InvalidArgumentError, message: /Expected an array of 3 class names/ });
  t.throws(() => model.setClasses(['a', 'b', 3] as never), { instanceOf: InvalidArgumentError });
  t.throws(() => model.setPreprocessing({ crop: 0 }), { instanceOf: InvalidArgumentError, message: /crop/ });
  t.throws(() => gray.setPreprocessing({ crop: 28 }), { instanceOf: InvalidArgumentError, message: /3 input channels .* takes 1/ });
  // A stored copy: changing the caller's array afterwards does not change the model.
  const names = ['x', 'y', 'z'];
  model.setClasses(names);
  names[0] = 'changed';
  t.deepEqual(model.classes, ['x', 'y', 'z']);
});

/** 64 images 1x8x8 in 2 classes (brightness), for the loop's own features. */
function twoClassSet(): ImageDataset {
  const n = 64;
  const pixels = new Uint8Array(n * 64);
  for (let i = 0; i < n; i++) pixels.fill((i % 2) * 120 + (i % 7) * 9, i * 64, (i + 1) * 64);
  return new ImageDataset({ pixels, shape: [n, 1, 8, 8], labels: Array.from({ length: n }, (_, i) => i % 2), classes: ['dark', 'light'] });
}
const tinyNet = () => createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [4, 8, 8], shortcut: 'A', numClasses: 2, inChannels: 1, seed: 3 });

test('earlyStopping: stops after `patience` epochs without improvement and restores the best weights', async (t) => {
  const data = twoClassSet();
  const [train, val] = randomSplit(data, 0.25, 1);
  const model = await tinyNet();
  t.teardown(() => model.dispose());
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
  let afterFirst: StateDict | undefined;
  // minDelta 1: no accuracy can beat another by 1, so only the first epoch ever counts as best.
  const report = await fit(model, {
    train, val, trainer, epochs: 10, batchSize: 16,
    earlyStopping: { patience: 2, minDelta: 1, restoreBest: true },
    onEpochEnd: async (e) => {
      if (e.epoch === 0) afterFirst = await model.stateDict();
    },
  });
  t.is(report.epochs.length, 3);
  t.deepEqual(report.earlyStopping, { stopped: true, bestEpoch: 1, best: report.epochs[0]!.val!.top1, restored: true });
  const now = await model.stateDict();
  for (const key of ['conv1.weight', 'fc.weight', 'bn1.running_mean']) t.true(bytes(now[key]!).equals(bytes(afterFirst![key]!)), key);
  await t.throwsAsync(fit(model, { train, trainer, epochs: 1, earlyStopping: { patience: 1 } }), { instanceOf: InvalidArgumentError, message: /val data set/ });
  await t.throwsAsync(fit(model, { train, val, trainer, epochs: 1, earlyStopping: { patience: 0 } }), { instanceOf: InvalidArgumentError, message: /earlyStopping.patience/ });
  await t.throwsAsync(fit(model, { train, val, trainer, epochs: 1, earlyStopping: { patience: 1, metric: 'top5' } as never }), { instanceOf: InvalidArgumentError, message: /earlyStopping.metric/ });
});

test('randomSplit: seeded, disjoint, covering, and the requested size', (t) => {
  const data = twoClassSet();
  const [train, val] = randomSplit(data, 0.2, 7);
  const [train2, val2] = randomSplit(data, 0.2, 7);
  const [, val3] = randomSplit(data, 0.2, 8);
  t.is(val.length, 13);
  t.is(train.length, 51);
  const sources = (d: ImageDataset) => Array.from({ length: d.length }, (_, i) => Buffer.from(d.get(i).image.data).toString('hex') + d.get(i).label);
  t.deepEqual(sources(val), sources(val2));
  t.deepEqual(sources(train), sources(train2));
  t.notDeepEqual(sources(val), sources(val3));
  t.throws(() => randomSplit(data, 1), { instanceOf: InvalidArgumentError, message: /between 0 and 1/ });
  t.throws(() => randomSplit(data, 0), { instanceOf: InvalidArgumentError });
});

test('evaluate() stops at an aborted signal with an AbortedError', async (t) => {
  const model = await tinyNet();
  t.teardown(() => model.dispose());
  const controller = new AbortController();
  controller.abort(new Error('user'));
  const error = await t.throwsAsync(evaluate(model, twoClassSet(), { batchSize: 8, signal: controller.signal }), { instanceOf: AbortedError });
  t.is((error.cause as Error).message, 'user');
  await t.throwsAsync(evaluate(model, twoClassSet(), { batch: 8 } as never), { instanceOf: InvalidArgumentError, message: /Unknown option 'batch'/ });
});

test('a head left out of the load keeps no class names; convert carries the description and drops a stale one', async (t) => {
  const source = await described();
  const path = join(tmp, 'head.safetensors');
  await source.save(path);
  const fresh = await resnet20({ numClasses: 3, shortcut: 'B', seed: 2 });
  t.teardown(() => (source.dispose(), fresh.dispose()));
  await fresh.load(path, { exclude: ['fc'] });
  t.is(fresh.classes, null);
  t.deepEqual(fresh.preprocessing, preprocessing);

  const { execFileSync } = await import('node:child_process');
  const cli = (...args: string[]) => execFileSync(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args], { encoding: 'utf8' });
  // .safetensors -> .pth: the description moves into the sidecar; and back.
  cli('convert', path, join(tmp, 'conv.pth'));
  t.deepEqual((await loadModel(join(tmp, 'conv.pth'))).classes, classes);
  cli('convert', join(tmp, 'conv.pth'), join(tmp, 'back.safetensors'));
  const back = await loadModel(join(tmp, 'back.safetensors'));
  t.teardown(() => back.dispose());
  t.deepEqual(back.classes, classes);
  // A file without a description converted onto a .pth whose old sidecar is still there: the sidecar goes.
  const bare = join(tmp, 'bare-head.safetensors');
  await writeSafetensors(bare, await fresh.stateDict());
  cli('convert', bare, join(tmp, 'conv.pth'));
  const { existsSync } = await import('node:fs');
  t.false(existsSync(join(tmp, 'conv.pth.json')));
  await t.throwsAsync(loadModel(join(tmp, 'conv.pth')), { instanceOf: WeightsError, message: /no model description/ });
});
