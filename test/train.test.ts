// Training behaviour beyond parity: freezing, fine-tuning with another head, evaluation,
// checkpoint resumption that equals an uninterrupted run, schedules, and option checks.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createResNet,
  evaluate,
  fit,
  ImageDataset,
  InvalidArgumentError,
  loadCheckpoint,
  lrAt,
  resnet20,
  Tensor,
  type ResNet,
  type StateDict,
  type TrainerOptions,
} from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'resnet-train-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** 192 random 1x16x16 images in 4 classes, whose class shifts the brightness (learnable). */
function tinyDataset(): ImageDataset {
  const n = 192;
  const pixels = new Uint8Array(n * 16 * 16);
  const labels: number[] = [];
  let state = 7;
  for (let i = 0; i < n; i++) {
    const label = i % 4;
    labels.push(label);
    for (let p = 0; p < 256; p++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      pixels[i * 256 + p] = Math.min(255, label * 50 + (state >>> 26));
    }
  }
  return new ImageDataset({ pixels, shape: [n, 1, 16, 16], labels, classes: ['a', 'b', 'c', 'd'] });
}

const small = (seed = 0) =>
  createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 4, inChannels: 1, seed });

const bytesOf = (sd: StateDict, key: string) => Buffer.from(sd[key]!.data.buffer, sd[key]!.data.byteOffset, sd[key]!.data.byteLength);

test('the paper\'s CIFAR nets have the paper\'s parameter counts', async (t) => {
  const expected = { 20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6 };
  const { resnet32, resnet44, resnet56, resnet110, resnet1202 } = await import('../lib/index.ts');
  const builders = { 20: resnet20, 32: resnet32, 44: resnet44, 56: resnet56, 110: resnet110, 1202: resnet1202 };
  for (const [depth, count] of Object.entries(expected)) {
    const model = await builders[Number(depth) as 20](({ seed: 0 }));
    const params = model.numParameters();
    t.log(`resnet${depth}: ${params}`);
    // The paper rounds: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M.
    t.is(Number((params / 1e6).toFixed(count >= 1e6 ? 1 : 2)), count / 1e6, `resnet${depth}`);
    const plain = await builders[Number(depth) as 20]({ seed: 0, plain: true });
    t.is(plain.numParameters(), params, 'plain nets have the same parameters');
    t.is(plain.config.shortcut, 'none');
    t.is(plain.arch, `plain${depth}`);
    model.dispose();
    plain.dispose();
  }
  const b = await resnet20({ shortcut: 'B', seed: 0 });
  t.is(b.numParameters(), 272474, 'option B adds the 1x1 projections');
  b.dispose();
});

test('frozen parts do not change; frozen BatchNorm keeps its statistics', async (t) => {
  const model = await small();
  const before = await model.stateDict();
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9 }, freezeUpTo: 'layer2', freezeBatchNorm: true });
  t.deepEqual(trainer.options.freeze, ['conv1', 'bn1', 'layer1', 'layer2']);
  for (let i = 0; i < 3; i++) await trainer.step(randomTensor([8, 1, 16, 16], i), [0, 1, 2, 3, 0, 1, 2, 3]);
  const after = await model.stateDict();
  for (const key of Object.keys(before)) {
    const same = bytesOf(before, key).equals(bytesOf(after, key));
    const frozen = /^(conv1|bn1|layer1|layer2)\./.test(key) || /running_|num_batches/.test(key);
    t.is(same, frozen, `${key} ${frozen ? 'frozen' : 'trained'}`);
  }
  model.dispose();
});

// Serial: two forwards agree bit for bit only with the same intra-op thread count, and a job of
// another test's model running at the same moment halves it (see setNumThreads).
test.serial('train steps leave the model in the mode they found it in', async (t) => {
  const model = await small();
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.1 } });
  await trainer.step(randomTensor([4, 1, 16, 16]), [0, 1, 2, 3]);
  t.false(model.training);
  const x = randomTensor([2, 1, 16, 16], 3);
  t.deepEqual([...(await model.forward(x)).data], [...(await model.forward(x)).data], 'eval-mode forward is deterministic');
  model.dispose();
});

test('fine-tuning: load everything but the head from a checkpoint with 10 classes', async (t) => {
  const source = await resnet20({ numClasses: 10, seed: 1 });
  const path = join(tmp, 'ten-classes.safetensors');
  await source.save(path);
  const target = await resnet20({ numClasses: 3, seed: 2 });
  await t.throwsAsync(target.load(path, { strict: false }), { message: /size mismatch for fc\.weight/ });
  t.deepEqual(await target.load(path, { exclude: ['fc'] }), { missingKeys: [], unexpectedKeys: [] });
  const [a, b] = [await source.stateDict(), await target.stateDict()];
  t.true(bytesOf(a, 'layer3.2.conv2.weight').equals(bytesOf(b, 'layer3.2.conv2.weight')));
  t.deepEqual(b['fc.weight']!.shape, [3, 64]);
  source.dispose();
  target.dispose();
});

test('evaluate() agrees with forward() and reports top-1 and top-5', async (t) => {
  const data = tinyDataset();
  const model = await small(3);
  const result = await evaluate(model, data, { batchSize: 50 });
  t.is(result.count, data.length);
  let hits = 0;
  for await (const batch of data.batches({ batchSize: 64 })) {
    const logits = await model.forward(batch.images);
    for (let i = 0; i < batch.labels.numel; i++) {
      const row = Array.from(logits.data.subarray(i * 4, i * 4 + 4));
      if (row.indexOf(Math.max(...row)) === Number(batch.labels.data[i])) hits++;
    }
  }
  t.is(result.top1, hits / data.length);
  t.is(result.top5, 1, 'with 4 classes every label is in the top 5');
  t.true(result.loss > 0);
  model.dispose();
});

test('evaluate() with tta hflip scores the mean of the image\'s and its mirror image\'s probabilities', async (t) => {
  const data = tinyDataset();
  const model = await small(3);
  const plain = await evaluate(model, data, { batchSize: 50 });
  const result = await evaluate(model, data, { batchSize: 50, tta: 'hflip' });
  t.is(result.count, data.length);
  const softmax = (row: number[]) => {
    const top = Math.max(...row);
    const e = row.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  let hits = 0;
  let nll = 0;
  for await (const batch of data.batches({ batchSize: 64 })) {
    const [n, c, h, w] = batch.images.shape as [number, number, number, number];
    const mirrored = new Float32Array(batch.images.numel);
    const src = batch.images.data as Float32Array;
    for (let plane = 0; plane < n * c; plane++) {
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) mirrored[(plane * h + y) * w + x] = src[(plane * h + y) * w + (w - 1 - x)]!;
    }
    const a = await model.forward(batch.images);
    const b = await model.forward(new Tensor(mirrored, [n, c, h, w]));
    for (let i = 0; i < n; i++) {
      const pa = softmax(Array.from(a.data.subarray(i * 4, i * 4 + 4)));
      const pb = softmax(Array.from(b.data.subarray(i * 4, i * 4 + 4)));
      const p = pa.map((v, k) => (v + pb[k]!) / 2);
      const label = Number(batch.labels.data[i]);
      if (p.indexOf(Math.max(...p)) === label) hits++;
      nll -= Math.log(p[label]!);
    }
  }
  t.log(`top-1 ${plain.top1} without, ${result.top1} with the mirror images; loss ${plain.loss.toFixed(4)} / ${result.loss.toFixed(4)}`);
  t.is(result.top1, hits / data.length);
  t.true(Math.abs(result.loss - nll / data.length) < 1e-4, `loss ${result.loss} vs ${nll / data.length} from forward()`);
  t.not(result.loss, plain.loss, 'the mirror images changed the scores');
  await t.throwsAsync(evaluate(model, data, { tta: 'vflip' as never }), { instanceOf: InvalidArgumentError, message: /Expected one of 'none', 'hflip' for tta but received 'vflip'/ });
  model.dispose();
});

const options: TrainerOptions = {
  optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4 },
  schedule: { type: 'cosine', totalIters: 24, warmupIters: 3 },
};
const augment = { crop: { padding: 2 }, hflip: true };

// Serial: bit-for-bit equality needs the same intra-op thread count at every step, and jobs running
// at the same moment share the threads (see setNumThreads).
test.serial('a run resumed from a checkpoint ends exactly where an uninterrupted run ends', async (t) => {
  const data = tinyDataset();
  const straight = await small(5);
  const report = await fit(straight, { train: data, epochs: 4, batchSize: 32, trainer: straight.trainer(options), seed: 9, augment });
  t.is(report.iterations, 24);

  const first = await small(5);
  const dir = join(tmp, 'checkpoints');
  const half = await fit(first, { train: data, epochs: 2, batchSize: 32, trainer: first.trainer(options), seed: 9, augment, checkpointDir: dir });
  t.is(half.epochs[1]!.checkpoint, join(dir, 'checkpoint-2.safetensors'));
  first.dispose();

  const resumed = await small(77); // different init: everything must come from the checkpoint
  const trainer = resumed.trainer(options);
  t.deepEqual(await loadCheckpoint(join(dir, 'checkpoint-2.safetensors'), resumed, trainer), { iteration: 12 });
  t.is(trainer.lr, lrAt(trainer.schedule, 0.05, 12));
  const rest = await fit(resumed, { train: data, epochs: 4, batchSize: 32, trainer, seed: 9, augment });
  t.deepEqual(rest.epochs.map((e) => e.epoch), [2, 3]);

  const [a, b] = [await straight.stateDict(), await resumed.stateDict()];
  for (const key of Object.keys(a)) t.true(bytesOf(a, key).equals(bytesOf(b, key)), key);
  straight.dispose();
  resumed.dispose();
});

test('fit learns a learnable task and reports progress', async (t) => {
  const data = tinyDataset();
  const model = await small(11);
  const seen: number[] = [];
  const report = await fit(model, {
    train: data,
    val: data,
    epochs: 6,
    batchSize: 32,
    trainer: model.trainer({ optimizer: { type: 'adamw', lr: 0.01 } }),
    progressEvery: 2,
    onProgress: (p) => seen.push(p.iteration),
  });
  t.true(seen.length >= 6 && seen.at(-1) === 36);
  const last = report.epochs.at(-1)!;
  t.true(last.val!.top1 > 0.9, `validation accuracy ${last.val!.top1}`);
  t.true(report.epochs[0]!.trainLoss > last.trainLoss);
  model.dispose();
});

test('steps follow the schedule', async (t) => {
  const model = await small();
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.1 }, schedule: { type: 'multistep', milestones: [2, 3], gamma: 0.1 } });
  const lrs: number[] = [];
  for (let i = 0; i < 4; i++) lrs.push((await trainer.step(randomTensor([4, 1, 16, 16], i), [0, 1, 2, 3])).lr);
  t.deepEqual(lrs.map((x) => Number(x.toPrecision(6))), [0.1, 0.1, 0.01, 0.001]);
  t.is(trainer.iteration, 4);
  model.dispose();
});

const bad: Array<[string, unknown, string]> = [
  ['nesterov without momentum', { optimizer: { type: 'sgd', lr: 0.1, nesterov: true } }, 'Nesterov momentum requires a momentum and zero dampening'],
  ['an unknown optimizer', { optimizer: { type: 'adam', lr: 0.1 } }, "Expected one of 'sgd', 'adamw' for optimizer.type but received 'adam' of type string"],
  ['a negative lr', { optimizer: { type: 'sgd', lr: -1 } }, 'Expected non-negative number for optimizer.lr but received -1 of type number'],
  ['class weights of the wrong length', { optimizer: { type: 'sgd', lr: 0.1 }, loss: { classWeights: [1, 2] } }, 'Expected an array of 4 non-negative numbers for loss.classWeights but received [ 1, 2 ] of type object'],
  ['an unknown stage', { optimizer: { type: 'sgd', lr: 0.1 }, freezeUpTo: 'layer4' }, "Expected one of 'stem', 'layer1', 'layer2', 'layer3' for freezeUpTo but received 'layer4' of type string"],
  ['an unknown option', { optimizer: { type: 'sgd', lr: 0.1 }, epochs: 3 }, "Unknown option 'epochs' for trainer; expected one of: optimizer, loss, schedule, clipGradNorm, freeze, freezeUpTo, freezeBatchNorm, distributed"],
  ['a distributed group that is not one', { optimizer: { type: 'sgd', lr: 0.1 }, distributed: { group: 'tcp://x:1' } }, "Expected a ProcessGroup from initProcessGroup() for distributed.group but received 'tcp://x:1' of type string"],
  ['a distributed group of null', { optimizer: { type: 'sgd', lr: 0.1 }, distributed: { group: null } }, 'Expected a ProcessGroup from initProcessGroup() for distributed.group but received null of type null'],
];

for (const [title, value, message] of bad) {
  test(`trainer rejects ${title}`, async (t) => {
    const model: ResNet = await small();
    t.throws(() => model.trainer(value as TrainerOptions), { instanceOf: InvalidArgumentError, message });
    model.dispose();
  });
}

test('labels must match the batch', async (t) => {
  const model = await small();
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.1 } });
  await t.throwsAsync(trainer.step(randomTensor([4, 1, 16, 16]), [0, 1]), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(trainer.step(randomTensor([2, 1, 16, 16]), [0, 9]), { message: /Expected labels in \[0, 4\)/ });
  model.dispose();
});

test('fit: progress carries an ETA that reaches 0, and an AbortSignal stops it before the next step', async (t) => {
  const { AbortedError } = await import('../lib/index.ts');
  const data = tinyDataset();
  const model = await small(12);
  const etas: number[] = [];
  await fit(model, { train: data, epochs: 2, batchSize: 32, trainer: model.trainer(options), progressEvery: 1, onProgress: (p) => etas.push(p.etaSeconds) });
  t.is(etas.length, 12);
  t.true(etas.every((e) => e >= 0 && Number.isFinite(e)));
  t.is(etas.at(-1), 0);

  const controller = new AbortController();
  const trainer = model.trainer(options);
  const error = await t.throwsAsync(
    fit(model, { train: data, epochs: 3, batchSize: 32, trainer, progressEvery: 1, signal: controller.signal, onProgress: (p) => p.iteration === 5 && controller.abort(new Error('enough')) }),
    { instanceOf: AbortedError, message: 'fit() was aborted after iteration 5' },
  );
  t.is((error!.cause as Error).message, 'enough');
  t.is(trainer.iteration, 5);
  t.is(error!.code, 'ERR_RESNET_ABORTED');
  await t.throwsAsync(fit(model, { train: data, epochs: 1, trainer, signal: 'stop' as never }), { instanceOf: InvalidArgumentError, message: /AbortSignal for signal/ });
  model.dispose();
});
