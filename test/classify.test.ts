// classify(): preprocessing by the weights' recipe, softmax scores, labels, top-k.
import test from 'ava';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageError, imagenetCategories, preprocessBatch, resnet18, topPredictions } from '../lib/index.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'resnet-classify-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const image = (r: number, g: number, b: number, format: 'png' | 'jpeg' = 'png') =>
  sharp({ create: { width: 300, height: 240, channels: 3, background: { r, g, b } } })[format]().toBuffer();

test('top-k with ImageNet labels and softmax scores, one list per image, same as forward()', async (t) => {
  const model = await resnet18({ seed: 0 });
  const inputs = [await image(200, 30, 30), await image(20, 200, 60, 'jpeg')];
  const result = await model.classify(inputs, { topk: 3 });
  t.is(result.length, 2);
  for (const predictions of result) {
    t.is(predictions.length, 3);
    t.true(predictions[0]!.score >= predictions[1]!.score && predictions[1]!.score >= predictions[2]!.score);
    for (const p of predictions) t.is(p.label, imagenetCategories()[p.index]!);
  }
  const logits = await model.forward(await preprocessBatch(inputs, { resize: 256, crop: 224 }));
  // Same classes in the same order; scores equal up to rounding: the other tests of this file run
  // at the same time, so this forward may get another share of the threads than classify's did,
  // and oneDNN splits (and so rounds) its work by the thread count.
  const expected = topPredictions(logits, 3, imagenetCategories());
  t.deepEqual(result.map((list) => list.map((p) => [p.index, p.label])), expected.map((list) => list.map((p) => [p.index, p.label])));
  for (let i = 0; i < result.length; i++) {
    for (let k = 0; k < 3; k++) t.true(Math.abs(result[i]![k]!.score - expected[i]![k]!.score) <= 1e-6);
  }
  const all = (await model.classify(inputs[0]!, { topk: 1000 }))[0]!;
  t.true(Math.abs(all.reduce((s, p) => s + p.score, 0) - 1) < 1e-4, 'scores are a softmax');
  model.dispose();
});

test('a path works, a model with another head labels by index or by given labels', async (t) => {
  const path = join(tmp, 'blue.png');
  await mkdir(tmp, { recursive: true });
  await sharp(await image(10, 10, 220)).toFile(path);
  const model = await resnet18({ seed: 0, numClasses: 3 });
  const [byIndex] = await model.classify([path]);
  t.deepEqual(byIndex!.map((p) => p.label).sort(), ['0', '1', '2']);
  const [named] = await model.classify([path], { labels: ['cat', 'dog', 'fish'], topk: 1 });
  t.true(['cat', 'dog', 'fish'].includes(named![0]!.label));
  await t.throwsAsync(model.classify([path], { labels: ['cat'] }), { message: /Expected an array of 3 labels for labels/ });
  await t.throwsAsync(model.classify([Buffer.from('not an image')]), { instanceOf: ImageError });
  model.dispose();
});
