// features(): every map's shape, stride and channels, and the maps equal what forward() builds on.
import test from 'ava';
import { createResNet, FeatureMap, InvalidArgumentError, resnet18, resnet20, resnet50 } from '../lib/index.ts';
import { maxAbsDiff, randomTensor } from './helpers/inputs.ts';

test('resnet50: stem and stages with strides 4..32 and torchvision\'s channel counts', async (t) => {
  const model = await resnet50({ seed: 0, numClasses: 10 });
  const maps = await model.features(randomTensor([2, 3, 64, 96]), { layers: ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'pool'] });
  const summary = Object.fromEntries(Object.entries(maps).map(([k, m]) => [k, { shape: m.shape, stride: m.stride, channels: m.channels }]));
  t.deepEqual(summary, {
    stem: { shape: [2, 64, 16, 24], stride: 4, channels: 64 },
    layer1: { shape: [2, 256, 16, 24], stride: 4, channels: 256 },
    layer2: { shape: [2, 512, 8, 12], stride: 8, channels: 512 },
    layer3: { shape: [2, 1024, 4, 6], stride: 16, channels: 1024 },
    layer4: { shape: [2, 2048, 2, 3], stride: 32, channels: 2048 },
    pool: { shape: [2, 2048], stride: 32, channels: 2048 },
  });
  t.true(maps.layer4 instanceof FeatureMap);
  model.dispose();
});

test('the pooled embedding through fc gives forward()\'s logits', async (t) => {
  const model = await resnet18({ seed: 1, numClasses: 7 });
  const x = randomTensor([3, 3, 48, 48], 5);
  const { pool } = await model.features(x, { layers: ['pool'] });
  const sd = await model.stateDict();
  const w = sd['fc.weight']!.data as Float32Array;
  const b = sd['fc.bias']!.data as Float32Array;
  const logits = new Float32Array(3 * 7);
  for (let n = 0; n < 3; n++) {
    for (let c = 0; c < 7; c++) {
      let acc = b[c]!;
      for (let k = 0; k < 512; k++) acc += pool!.data[n * 512 + k]! * w[c * 512 + k]!;
      logits[n * 7 + c] = acc;
    }
  }
  t.true(maxAbsDiff(logits, (await model.forward(x)).data) < 1e-4);
  model.dispose();
});

test('dilation keeps the stride; the CIFAR nets have three stages at strides 1, 2, 4', async (t) => {
  const dilated = await resnet50({ seed: 0, replaceStrideWithDilation: [false, true, true] });
  const d = await dilated.features(randomTensor([1, 3, 64, 64]), { layers: ['layer4'] });
  t.deepEqual([d.layer4!.shape, d.layer4!.stride], [[1, 2048, 8, 8], 8]);
  dilated.dispose();
  const cifar = await resnet20({ seed: 0 });
  const c = await cifar.features(randomTensor([1, 3, 32, 32]));
  t.deepEqual(Object.keys(c), ['layer1', 'layer2', 'layer3']);
  t.deepEqual([c.layer3!.shape, c.layer3!.stride, c.layer3!.channels], [[1, 64, 8, 8], 4, 64]);
  cifar.dispose();
});

test('unknown maps are rejected before any work', async (t) => {
  const model = await createResNet({ block: 'basic', layers: [1, 1, 1, 1], seed: 0 });
  await t.throwsAsync(model.features(randomTensor([1, 3, 32, 32]), { layers: ['layer5'] }), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'stem', 'layer1', 'layer2', 'layer3', 'layer4', 'pool' for layers[0] but received 'layer5' of type string",
  });
  model.dispose();
});
