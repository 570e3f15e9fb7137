// Every option is validated in TypeScript before it reaches C++, with one message shape, and the
// combinations torchvision refuses fail with torchvision's words.
import test from 'ava';
import {
  createResNet,
  DeviceError,
  InvalidArgumentError,
  resnet18,
  resnet50,
  type ModelOptions,
} from '../lib/index.ts';

const cases: Array<[string, Record<string, unknown>, string]> = [
  ['numClasses 1.5', { numClasses: 1.5 }, 'Expected positive integer for numClasses but received 1.5 of type number'],
  ['numClasses 0', { numClasses: 0 }, 'Expected positive integer for numClasses but received 0 of type number'],
  ['numClasses string', { numClasses: '10' }, "Expected positive integer for numClasses but received '10' of type string"],
  ['inChannels -1', { inChannels: -1 }, 'Expected positive integer for inChannels but received -1 of type number'],
  ['zeroInitResidual 1', { zeroInitResidual: 1 }, 'Expected boolean for zeroInitResidual but received 1 of type number'],
  ['seed -3', { seed: -3 }, 'Expected non-negative integer for seed but received -3 of type number'],
  ['device gpu', { device: 'gpu' }, "Expected 'cpu', 'cuda' or 'cuda:N' for device but received 'gpu' of type string"],
  ['weights number', { weights: 5 }, "Expected a weights name ('DEFAULT', 'IMAGENET1K_V1', ...), a path, a URL or null for weights but received 5 of type number"],
  ['weights unknown name', { weights: 'IMAGENET1K_V9' }, "Expected one of 'IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT' for weights of resnet50 but received 'IMAGENET1K_V9' of type string"],
  ['weights with numClasses', { weights: 'DEFAULT', numClasses: 10 }, "The parameter 'num_classes' expected value 1000 but got 10 instead."],
  ['progress string', { progress: 'yes' }, "Expected a boolean or a function for progress but received 'yes' of type string"],
  ['dilation not booleans', { replaceStrideWithDilation: [0, 1, 0] }, 'Expected an array of 3 booleans for replaceStrideWithDilation but received [ 0, 1, 0 ] of type object'],
  ['dilation length 2', { replaceStrideWithDilation: [false, true] }, 'replace_stride_with_dilation should be None or a 3-element tuple, got [False, True]'],
  ['unknown option', { numClass: 10 }, "Unknown option 'numClass' for resnet50; expected one of: weights, progress, signal, numClasses, zeroInitResidual, replaceStrideWithDilation, inChannels, device, precision, memoryFormat, seed"],
];

for (const [title, options, message] of cases) {
  test(`resnet50 rejects ${title}`, async (t) => {
    const error = await t.throwsAsync(resnet50(options as ModelOptions), { instanceOf: InvalidArgumentError });
    t.is(error?.message, message);
    t.is(error?.code, 'ERR_RESNET_INVALID_ARGUMENT');
  });
}

test('options must be an object', async (t) => {
  await t.throwsAsync(resnet18(42 as unknown as ModelOptions), {
    instanceOf: InvalidArgumentError,
    message: 'Expected an object for options but received 42 of type number',
  });
});

test('BasicBlock refuses groups and width other than torchvision allows', async (t) => {
  await t.throwsAsync(createResNet({ block: 'basic', layers: [2, 2, 2, 2], groups: 2 }), {
    instanceOf: InvalidArgumentError,
    message: 'BasicBlock only supports groups=1 and base_width=64',
  });
  await t.throwsAsync(createResNet({ block: 'basic', layers: [2, 2, 2, 2], widthPerGroup: 32 }), {
    message: 'BasicBlock only supports groups=1 and base_width=64',
  });
});

test('BasicBlock refuses dilation, exactly when torchvision does', async (t) => {
  await t.throwsAsync(resnet18({ replaceStrideWithDilation: [false, false, true] }), {
    instanceOf: InvalidArgumentError,
    message: 'Dilation > 1 not supported in BasicBlock',
  });
  // With one block in the dilated stage, torchvision builds it with the previous dilation (1).
  const model = await createResNet({
    block: 'basic',
    layers: [1, 1, 1, 1],
    replaceStrideWithDilation: [false, false, true],
    numClasses: 2,
    seed: 0,
  });
  t.is(model.config.replaceStrideWithDilation[2], true);
  model.dispose();
});

test('createResNet validates its spec', async (t) => {
  await t.throwsAsync(createResNet({ block: 'triple' as 'basic', layers: [1, 1, 1, 1] }), {
    message: "Expected one of 'basic', 'bottleneck' for block but received 'triple' of type string",
  });
  await t.throwsAsync(createResNet({ block: 'basic', layers: [1, 1, 1] as unknown as [1, 1, 1, 1] }), {
    message: 'Expected an array of 4 positive integers for layers but received [ 1, 1, 1 ] of type object',
  });
  await t.throwsAsync(createResNet({ block: 'basic', layers: [1, 0, 1, 1] }), {
    message: 'Expected positive integer for layers[1] but received 0 of type number',
  });
});

test('CUDA from a CPU-only LibTorch is a DeviceError that says how to fix it', async (t) => {
  const error = await t.throwsAsync(resnet18({ device: 'cuda', numClasses: 2 }), { instanceOf: DeviceError });
  t.is(error?.code, 'ERR_RESNET_DEVICE');
  t.regex(error!.message, /CUDA was requested \(device 'cuda'\) but libtorch-resnet was built against a CPU-only LibTorch/);
  t.regex(error!.message, /LIBTORCH=\/path\/to\/libtorch npm rebuild libtorch-resnet/);
  // The stack points at the caller, not at the event loop.
  t.regex(error!.stack ?? '', /options\.test\.ts/);
});

test('config holds the resolved options', async (t) => {
  const model = await resnet18({ numClasses: 10, seed: 7 });
  t.deepEqual(model.config, {
    arch: 'resnet18',
    block: 'basic',
    stem: 'imagenet',
    widths: [64, 128, 256, 512],
    shortcut: 'B',
    layers: [2, 2, 2, 2],
    groups: 1,
    widthPerGroup: 64,
    numClasses: 10,
    zeroInitResidual: false,
    replaceStrideWithDilation: [false, false, false],
    inChannels: 3,
    device: 'cpu',
    precision: 'float32',
    memoryFormat: 'contiguous',
    seed: 7,
    weights: null,
  });
  t.is(model.arch, 'resnet18');
  t.is(model.device, 'cpu');
  t.false(model.training);
  model.dispose();
});
