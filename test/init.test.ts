// Initialisation is torchvision's: Kaiming normal (fan_out, ReLU) convs, BatchNorm 1/0, optional
// zero-init of each block's last BatchNorm, LibTorch's default Linear init (PyTorch's), seeded.
import test from 'ava';
import { resnet18, resnet50, type StateDict } from '../lib/index.ts';

function stats(data: Float32Array): { mean: number; std: number; min: number; max: number } {
  let sum = 0;
  let sq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of data) {
    sum += x;
    sq += x * x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = sum / data.length;
  return { mean, std: Math.sqrt(sq / data.length - mean * mean), min, max };
}

const f32 = (sd: StateDict, key: string) => sd[key]!.data as Float32Array;

test('the same seed gives the same weights, another seed other weights', async (t) => {
  const [a, b, c] = await Promise.all([resnet18({ seed: 11 }), resnet18({ seed: 11 }), resnet18({ seed: 12 })]);
  const [sa, sb, sc] = await Promise.all([a.stateDict(), b.stateDict(), c.stateDict()]);
  for (const key of ['conv1.weight', 'layer3.1.conv2.weight', 'fc.weight', 'fc.bias']) {
    t.deepEqual([...f32(sa, key)], [...f32(sb, key)], key);
    t.notDeepEqual([...f32(sa, key)], [...f32(sc, key)], key);
  }
  for (const m of [a, b, c]) m.dispose();
});

test('without a seed, two models differ and config.seed reproduces each', async (t) => {
  const a = await resnet18({ numClasses: 5 });
  const b = await resnet18({ numClasses: 5 });
  t.not(a.config.seed, b.config.seed);
  const again = await resnet18({ numClasses: 5, seed: a.config.seed });
  t.deepEqual([...f32(await again.stateDict(), 'fc.weight')], [...f32(await a.stateDict(), 'fc.weight')]);
  for (const m of [a, b, again]) m.dispose();
});

test('convolutions: Kaiming normal, fan_out, ReLU gain', async (t) => {
  const model = await resnet50({ seed: 0 });
  const sd = await model.stateDict();
  // std = sqrt(2 / fan_out), fan_out = out_channels * kernel area
  for (const [key, fanOut] of [
    ['conv1.weight', 64 * 7 * 7],
    ['layer1.0.conv2.weight', 64 * 3 * 3],
    ['layer4.2.conv3.weight', 2048],
    ['layer3.0.downsample.0.weight', 1024],
  ] as const) {
    const s = stats(f32(sd, key));
    const expected = Math.sqrt(2 / fanOut);
    t.true(Math.abs(s.std / expected - 1) < 0.05, `${key}: std ${s.std} vs ${expected}`);
    t.true(Math.abs(s.mean) < expected * 0.05, `${key}: mean ${s.mean}`);
  }
  model.dispose();
});

test('BatchNorm: weight 1, bias 0, running stats 0 / 1, counters 0', async (t) => {
  const model = await resnet50({ seed: 0 });
  const sd = await model.stateDict();
  for (const key of ['bn1', 'layer1.0.bn3', 'layer4.0.downsample.1']) {
    t.true(f32(sd, `${key}.weight`).every((x) => x === 1), `${key}.weight`);
    t.true(f32(sd, `${key}.bias`).every((x) => x === 0), `${key}.bias`);
    t.true(f32(sd, `${key}.running_mean`).every((x) => x === 0), `${key}.running_mean`);
    t.true(f32(sd, `${key}.running_var`).every((x) => x === 1), `${key}.running_var`);
    t.is((sd[`${key}.num_batches_tracked`]!.data as BigInt64Array)[0], 0n);
  }
  model.dispose();
});

test('fc: PyTorch default Linear init, uniform within 1/sqrt(in_features)', async (t) => {
  const model = await resnet18({ seed: 0, numClasses: 100 });
  const sd = await model.stateDict();
  const bound = 1 / Math.sqrt(512);
  for (const key of ['fc.weight', 'fc.bias']) {
    const s = stats(f32(sd, key));
    t.true(s.min >= -bound && s.max <= bound, `${key} within ±${bound}`);
    t.true(s.max > bound * 0.9 && s.min < -bound * 0.9, `${key} spans the interval`);
  }
  const w = stats(f32(sd, 'fc.weight'));
  t.true(Math.abs(w.std / (bound / Math.sqrt(3)) - 1) < 0.05, 'uniform std');
  model.dispose();
});

test('zeroInitResidual zeroes exactly each block\'s last BatchNorm weight', async (t) => {
  const bottleneck = await resnet50({ seed: 0, zeroInitResidual: true });
  const basic = await resnet18({ seed: 0, zeroInitResidual: true });
  const b = await bottleneck.stateDict();
  const r = await basic.stateDict();
  const zeroed = (sd: StateDict) =>
    Object.keys(sd).filter((k) => /\.bn\d\.weight$|^bn1\.weight$|downsample\.1\.weight$/.test(k) && f32(sd, k).every((x) => x === 0));
  t.deepEqual(zeroed(b), Object.keys(b).filter((k) => /^layer\d\.\d+\.bn3\.weight$/.test(k)));
  t.is(zeroed(b).length, 16);
  t.deepEqual(zeroed(r), Object.keys(r).filter((k) => /^layer\d\.\d+\.bn2\.weight$/.test(k)));
  t.is(zeroed(r).length, 8);
  bottleneck.dispose();
  basic.dispose();
});
