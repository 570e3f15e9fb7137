// The network's one description (native/core/network.h, read through describeNetwork): its
// parameter layers are the modules' state dict, key for key and in order; its convolutions have
// the weights' shapes; its stages are the feature maps features() returns.
import test from 'ava';
import { createResNet, resnet18, resnet20, resnet50, resnext50_32x4d, type ResNet } from '../lib/index.ts';
import { describeNetwork } from '../lib/features.ts';
import { native } from '../lib/native.ts';
import type { NativeSpec } from '../types/native.js';
import { randomTensor } from './helpers/inputs.ts';

async function checkAgainstModules(t: import('ava').ExecutionContext, model: ResNet): Promise<void> {
  const net = describeNetwork(model.config);
  const sd = await model.stateDict();
  const prefixes = [...new Set(Object.keys(sd).map((k) => k.slice(0, k.lastIndexOf('.'))))];
  const described = net.layers.filter((l) => l.kind === 'conv' || l.kind === 'bn' || l.kind === 'fc').map((l) => l.name);
  t.deepEqual(described, prefixes, `${model.arch}: parameter layers in state-dict order`);
  for (const l of net.layers) {
    if (l.kind === 'conv') {
      t.deepEqual(sd[`${l.name}.weight`]!.shape, [l.outChannels, l.inChannels / l.groups!, l.kernel!, l.kernel!], l.name);
    } else if (l.kind === 'bn') {
      t.deepEqual(sd[`${l.name}.weight`]!.shape, [l.outChannels], l.name);
    } else if (l.kind === 'fc') {
      t.deepEqual(sd[`${l.name}.weight`]!.shape, [l.outChannels, l.inChannels], l.name);
    }
  }
  // Blocks and stages tile the layers between the stem and the head.
  t.is(net.stages[0]!.first, 0);
  net.stages.slice(1).forEach((s, i) => t.is(s.first, net.stages[i]!.end));
  t.is(net.stages.at(-1)!.end, net.layers.length - 1);
}

test('the parameter layers are the state dict of resnet18, resnet50, resnext50_32x4d, resnet20 and a plain net', async (t) => {
  const models = [
    await resnet18({ seed: 0, numClasses: 10 }),
    await resnet50({ seed: 0, numClasses: 10 }),
    await resnext50_32x4d({ seed: 0, numClasses: 10 }),
    await resnet20({ seed: 0 }),
    await createResNet({ block: 'basic', layers: [1, 2], widths: [8, 16], stem: 'cifar', shortcut: 'none', numClasses: 3, seed: 0 }),
  ];
  for (const model of models) {
    await checkAgainstModules(t, model);
    model.dispose();
  }
});

test('resnet50 block by block: V1.5 stride on the 3x3, projections where the shape changes, grouped convs for ResNeXt', (t) => {
  const base = { stem: 'imagenet' as const, shortcut: 'B' as const, widths: [64, 128, 256, 512], numClasses: 10, zeroInitResidual: false, inChannels: 3 };
  const net = describeNetwork({ ...base, block: 'bottleneck', layers: [3, 4, 6, 3], groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false, false, false] });
  const block = net.blocks.find((b) => b.name === 'layer2.0')!;
  const layers = net.layers.slice(block.first, block.end);
  t.deepEqual(
    layers.map((l) => [l.kind, l.name, l.input, l.output, l.stride ?? null]),
    [
      ['conv', 'layer2.0.conv1', 'x', 'out', 1],
      ['bn', 'layer2.0.bn1', 'out', 'out', null],
      ['relu', 'layer2.0.relu', 'out', 'out', null],
      ['conv', 'layer2.0.conv2', 'out', 'out', 2],
      ['bn', 'layer2.0.bn2', 'out', 'out', null],
      ['relu', 'layer2.0.relu', 'out', 'out', null],
      ['conv', 'layer2.0.conv3', 'out', 'out', 1],
      ['bn', 'layer2.0.bn3', 'out', 'out', null],
      ['conv', 'layer2.0.downsample.0', 'x', 'identity', 2],
      ['bn', 'layer2.0.downsample.1', 'identity', 'identity', null],
      ['add', 'layer2.0.add', 'identity', 'out', null],
      ['relu', 'layer2.0.relu', 'out', 'x', null],
    ],
  );
  t.deepEqual(block, { name: 'layer2.0', first: block.first, end: block.end, inChannels: 256, outChannels: 512, stride: 2, dilation: 1 });
  const resnext = describeNetwork({ ...base, block: 'bottleneck', layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4, replaceStrideWithDilation: [false, false, false] });
  const conv2 = resnext.layers.find((l) => l.name === 'layer1.0.conv2')!;
  t.deepEqual([conv2.inChannels, conv2.outChannels, conv2.groups, conv2.kernel, conv2.padding], [128, 128, 32, 3, 1]);
});

test('dilation as _make_layer: the first block of a dilated stage keeps the previous dilation', (t) => {
  const net = describeNetwork({
    block: 'bottleneck', stem: 'imagenet', shortcut: 'B', widths: [64, 128, 256, 512], layers: [1, 1, 2, 2], numClasses: 10,
    zeroInitResidual: false, groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false, true, true], inChannels: 3,
  });
  t.deepEqual(net.blocks.map((b) => [b.name, b.stride, b.dilation]), [
    ['layer1.0', 1, 1], ['layer2.0', 2, 1], ['layer3.0', 1, 1], ['layer3.1', 1, 2], ['layer4.0', 1, 2], ['layer4.1', 1, 4],
  ]);
  const conv = net.layers.find((l) => l.name === 'layer4.1.conv2')!;
  t.deepEqual([conv.dilation, conv.padding, conv.stride], [4, 4, 1]);
  t.deepEqual(net.stages.map((s) => [s.name, s.stride, s.channels]), [
    ['stem', 4, 64], ['layer1', 4, 256], ['layer2', 8, 512], ['layer3', 8, 1024], ['layer4', 8, 2048], ['pool', 8, 2048],
  ]);
});

test('option A: zero-padding adds where the shape changes, identity elsewhere', (t) => {
  const net = describeNetwork({
    block: 'basic', stem: 'cifar', shortcut: 'A', widths: [16, 32, 64], layers: [1, 1, 1], numClasses: 10,
    zeroInitResidual: false, groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false, false], inChannels: 3,
  });
  const adds = net.layers.filter((l) => l.kind === 'add');
  t.deepEqual(adds.map((l) => [l.name, l.zeroPad ?? false, l.stride ?? 1, l.padFront ?? 0, l.inChannels, l.outChannels]), [
    ['layer1.0.add', false, 1, 0, 16, 16],
    ['layer2.0.add', true, 2, 8, 16, 32],
    ['layer3.0.add', true, 2, 16, 32, 64],
  ]);
  t.deepEqual(net.layers.slice(0, 3).map((l) => [l.kind, l.kernel ?? null, l.stride ?? null]), [['conv', 3, 1], ['bn', null, null], ['relu', null, null]]);
});

test('a spec that describes no network is refused with the invalid-argument code', (t) => {
  const error = t.throws(() =>
    describeNetwork({
      block: 'basic', stem: 'cifar', shortcut: 'A', widths: [16, 32], layers: [1, 1, 1], numClasses: 10,
      zeroInitResidual: false, groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false], inChannels: 3,
    }),
  );
  t.is((error as Error & { code?: string }).code, 'ERR_RESNET_INVALID_ARGUMENT');
  // Core states the invariant it relies on; the user's message (torchvision's) is lib/options.ts's.
  t.is(error!.message, 'Invalid network spec: expected one entry in layers per width');
});

test('core refuses a dilated BasicBlock from a caller that skipped lib/ validation, naming the invariant', async (t) => {
  const spec = {
    block: 'basic', stem: 'imagenet', shortcut: 'B', widths: [64, 128, 256, 512], layers: [2, 2, 2, 2], numClasses: 10,
    zeroInitResidual: false, groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false, false, true], inChannels: 3,
  } satisfies NativeSpec;
  // Describing it is fine (lib/options.ts reads the dilations from the description to refuse it)...
  t.is(native.describeNetwork(spec).blocks.at(-1)!.dilation, 2);
  // ...building its modules is not.
  const error = await t.throwsAsync(native.createModel(spec, 'cpu', 0));
  t.is((error as Error & { code?: string }).code, 'ERR_RESNET_INVALID_ARGUMENT');
  t.is(error!.message, 'Invalid network spec: expected a BasicBlock without dilation');
});

test('features() returns the description\'s stages', async (t) => {
  const model = await resnet18({ seed: 0, numClasses: 10, replaceStrideWithDilation: [false, false, false] });
  const net = describeNetwork(model.config);
  const maps = await model.features(randomTensor([1, 3, 64, 64]), { layers: net.stages.map((s) => s.name) });
  t.deepEqual(
    Object.entries(maps).map(([name, m]) => [name, m.stride, m.channels, m.shape[1]]),
    net.stages.map((s) => [s.name, s.stride, s.channels, s.channels]),
  );
  model.dispose();
});
