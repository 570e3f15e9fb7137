// The inference engines (eval-mode forward through oneDNN primitives, or through LibTorch's
// optimized TorchScript graph) equal the plain modules within 1e-4 relative, and are rebuilt
// whenever the weights or the mode change.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import {
  DeviceError,
  InvalidArgumentError,
  cpuBfloat16Available,
  createResNet,
  getNumThreads,
  onednnEngineCompiled,
  resnet18,
  resnet20,
  resnext50_32x4d,
  setNumThreads,
  type InferenceEngineChoice,
  type InferenceEngineOptions,
  type ResNet,
} from '../lib/index.ts';
import { forcedEngine, oneDnnAvx512, oneDnnNativeBfloat16 } from './helpers/cpu.ts';
import { maxAbsDiff, randomTensor } from './helpers/inputs.ts';

interface EngineCase {
  label: string;
  engine: InferenceEngineChoice;
  options: InferenceEngineOptions;
  kind: 'onednn' | 'torchscript';
}
const engines: EngineCase[] = [
  { label: 'onednn', engine: 'onednn', options: {}, kind: 'onednn' },
  { label: 'onednn, direct only', engine: 'onednn', options: { winograd: false }, kind: 'onednn' },
  { label: 'torchscript', engine: 'torchscript', options: {}, kind: 'torchscript' },
];

const relative = (a: Float32Array, b: Float32Array) => maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));

async function plainForward(model: ResNet, x: ReturnType<typeof randomTensor>): Promise<Float32Array> {
  await model.setInferenceEngine('none');
  const kind = await model.inferenceEngine();
  if (kind !== 'none') throw new Error(`expected the plain modules, got the ${kind} engine`);
  return (await model.forward(x)).data;
}

/** Non-trivial BatchNorm statistics, so that folding them into the convolutions matters. */
async function trained(model: ResNet, shape: number[]): Promise<void> {
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
  for (let i = 0; i < 3; i++) await trainer.step(randomTensor(shape, 10 + i), Array.from({ length: shape[0]! }, (_, k) => k % 3));
}

const cases: Array<[string, () => Promise<ResNet>, number[]]> = [
  ['resnet18', () => resnet18({ seed: 0, numClasses: 3 }), [2, 3, 64, 64]],
  ['resnext50_32x4d (groups)', () => resnext50_32x4d({ seed: 0, numClasses: 3 }), [2, 3, 64, 64]],
  ['resnet50 with dilation', () => createResNet({ block: 'bottleneck', layers: [1, 1, 1, 1], numClasses: 3, replaceStrideWithDilation: [false, true, true], seed: 0 }), [2, 3, 64, 64]],
  ['custom bottleneck, groups 4, width 24, 2 input channels', () => createResNet({ block: 'bottleneck', layers: [1, 2, 1, 1], widths: [24, 40, 48, 56], groups: 4, widthPerGroup: 16, inChannels: 2, numClasses: 5, seed: 0 }), [3, 2, 48, 40]],
  ['resnet20 option A, grayscale', () => resnet20({ seed: 0, numClasses: 3, inChannels: 1 }), [4, 1, 28, 28]],
  ['resnet20 option B', () => resnet20({ seed: 0, numClasses: 3, shortcut: 'B' }), [4, 3, 32, 32]],
  ['plain20', () => resnet20({ seed: 0, numClasses: 3, plain: true }), [4, 3, 32, 32]],
];

for (const [name, build, shape] of cases) {
  test.serial(`${name}: every engine equals the plain modules`, async (t) => {
    const model = await build();
    await trained(model, shape);
    const x = randomTensor(shape, 3);
    const plain = await plainForward(model, x);
    for (const e of engines) {
      if (e.kind === 'onednn' && !onednnEngineCompiled()) continue;
      await model.setInferenceEngine(e.engine, e.options);
      t.is(await model.inferenceEngine(), e.kind);
      const out = (await model.forward(x)).data;
      const rel = relative(out, plain);
      t.log(`${e.label}: max relative difference ${rel.toExponential(2)}`);
      t.true(rel <= 1e-4, `${e.label}: max relative difference ${rel}`);
    }
    model.dispose();
  });
}

test.serial('the oneDNN engine is built in and is the default on the CPU', async (t) => {
  // Debian's LibTorch links the system oneDNN, and scripts/install-system-deps.sh installs its
  // headers: a build here without the engine is a broken build.
  t.true(onednnEngineCompiled());
  const model = await resnet20({ seed: 0 });
  t.is(await model.inferenceEngine(), forcedEngine ?? 'onednn', 'the default (or the engine LIBTORCH_RESNET_ENGINE forces)');
  await model.setInferenceEngine(false);
  t.is(await model.inferenceEngine(), 'none');
  await model.setInferenceEngine(true);
  t.is(await model.inferenceEngine(), 'onednn');
  await model.setInferenceEngine('torchscript');
  t.is(await model.inferenceEngine(), 'torchscript');
  model.dispose();
});

test.serial('autocast and channels_last decide which engine runs', async (t) => {
  if (cpuBfloat16Available()) {
    const bf16 = await resnet20({ seed: 0, precision: 'bfloat16' });
    await bf16.setInferenceEngine('auto');
    t.is(await bf16.inferenceEngine(), oneDnnNativeBfloat16 ? 'onednn' : 'none', 'bfloat16 runs the oneDNN engine in bfloat16 where oneDNN has native bfloat16');
    await bf16.setInferenceEngine('torchscript');
    t.is(await bf16.inferenceEngine(), 'none', 'the TorchScript engine is float32 only: autocast on the modules');
    bf16.dispose();
  } else {
    await t.throwsAsync(resnet20({ seed: 0, precision: 'bfloat16' }), { instanceOf: DeviceError, message: /bfloat16 convolutions are not available/ });
  }
  const cl = await resnet18({ seed: 0, numClasses: 3, memoryFormat: 'channels_last' });
  await cl.setInferenceEngine('auto');
  t.is(await cl.inferenceEngine(), 'onednn', 'the oneDNN engine reads channels_last inputs');
  await trained(cl, [2, 3, 32, 32]);
  const x = randomTensor([2, 3, 40, 48], 4);
  const engine = (await cl.forward(x)).data;
  t.true(relative(engine, await plainForward(cl, x)) <= 1e-4);
  await cl.setInferenceEngine('torchscript');
  t.is(await cl.inferenceEngine(), 'none', 'the TorchScript engine was frozen for contiguous inputs');
  cl.dispose();
});

test.serial('the oneDNN engine plans each input shape and thread count, and evicts old plans', async (t) => {
  const model = await resnet18({ seed: 0, numClasses: 4 });
  await trained(model, [2, 3, 32, 32]);
  // Odd sizes and a 1x1 image too: every layer then works on 1x1 maps, with padding only.
  // More shapes than the 16 plans kept, so some are evicted and built again; larger ones after
  // smaller ones grow the shared activation arena, smaller ones after reuse it.
  const shapes = [[1, 3, 32, 32], [3, 3, 32, 32], [1, 3, 64, 48], [2, 3, 33, 35], [5, 3, 32, 32], [1, 3, 1, 1], [2, 3, 7, 5],
    ...Array.from({ length: 12 }, (_, i) => [1 + (i % 3), 3, 8 + i, 9]), [1, 3, 32, 32], [3, 3, 32, 32]];
  const inputs = shapes.map((s, i) => randomTensor(s, 20 + i));
  const plain: Float32Array[] = [];
  for (const x of inputs) plain.push(await plainForward(model, x));
  await model.setInferenceEngine('onednn');
  // Twice round: the second pass reuses (or, past the cache's 16 plans, rebuilds) each plan.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < inputs.length; i++) {
      const out = await model.forward(inputs[i]!);
      t.deepEqual(out.shape, [shapes[i]![0]!, 4]);
      t.true(relative(out.data, plain[i]!) <= 1e-4, `shape ${shapes[i]} round ${round}`);
    }
  }
  const threads = getNumThreads();
  try {
    setNumThreads(1);
    t.true(relative((await model.forward(inputs[0]!)).data, plain[0]!) <= 1e-4, 'a plan for 1 thread');
  } finally {
    setNumThreads(threads);
  }
  model.dispose();
});

test.serial('the oneDNN engine gives each call its own output and leaves the input alone', async (t) => {
  const model = await resnet18({ seed: 0, numClasses: 3 });
  const a = randomTensor([2, 3, 32, 32], 1);
  const b = randomTensor([2, 3, 32, 32], 2);
  const aCopy = Float32Array.from(a.data);
  const [outA, outB] = await Promise.all([model.forward(a), model.forward(b)]);
  t.deepEqual(Array.from(a.data), Array.from(aCopy));
  t.true(maxAbsDiff(outA.data, outB.data) > 1e-4, 'two inputs, two different outputs');
  t.deepEqual(Array.from((await model.forward(a)).data), Array.from(outA.data), 'the same input gives the same logits');
  model.dispose();
});

test.serial('models running at the same moment on the oneDNN engine agree with running alone', async (t) => {
  const models = await Promise.all([resnet18({ seed: 1, numClasses: 3 }), resnet18({ seed: 2, numClasses: 3 })]);
  const x = randomTensor([2, 3, 48, 48], 5);
  const alone = [(await models[0]!.forward(x)).data, (await models[1]!.forward(x)).data];
  for (let i = 0; i < 3; i++) {
    const together = await Promise.all(models.map((m) => m.forward(x)));
    t.true(relative(together[0]!.data, alone[0]!) <= 1e-5);
    t.true(relative(together[1]!.data, alone[1]!) <= 1e-5);
  }
  for (const m of models) m.dispose();
});

test.serial('setInferenceEngine rejects unknown engines and options with typed errors', async (t) => {
  const model = await resnet20({ seed: 0 });
  await t.throwsAsync(model.setInferenceEngine('fast' as never), { instanceOf: InvalidArgumentError, message: /engine/ });
  await t.throwsAsync(model.setInferenceEngine('onednn', { winograd: 'yes' as never }), { instanceOf: InvalidArgumentError, message: /winograd/ });
  await t.throwsAsync(model.setInferenceEngine('onednn', { fast: true } as never), { instanceOf: InvalidArgumentError, message: /fast/ });
  t.is(await model.inferenceEngine(), forcedEngine ?? 'onednn', 'a rejected call changes nothing');
  model.dispose();
});

for (const e of engines) {
  test.serial(`${e.label}: the engine follows new weights and training`, async (t) => {
    const model = await resnet18({ seed: 0, numClasses: 3 });
    await model.setInferenceEngine(e.engine, e.options);
    const x = randomTensor([1, 3, 32, 32], 8);
    const before = (await model.forward(x)).data;
    const other = await resnet18({ seed: 1, numClasses: 3 });
    await model.loadStateDict(await other.stateDict());
    const loaded = (await model.forward(x)).data;
    t.true(relative(loaded, (await other.forward(x)).data) <= 1e-4, 'after loadStateDict the engine has the new weights');
    t.true(maxAbsDiff(loaded, before) > 1e-3);
    await trained(model, [3, 3, 32, 32]);
    const afterTraining = (await model.forward(x)).data;
    t.true(maxAbsDiff(afterTraining, loaded) > 1e-4, 'after training steps the engine has the trained weights');
    t.true(relative(afterTraining, await plainForward(model, x)) <= 1e-4);
    other.dispose();
    model.dispose();
  });
}

test.serial('the oneDNN engine on an older CPU (oneDNN limited to AVX2): other layouts, direct only, no bfloat16', async (t) => {
  const child = spawnSync(process.execPath, ['--import=tsx', 'test/helpers/engine-vs-plain.ts'], {
    env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2', LIBTORCH_RESNET_ENGINE: 'auto' },
    encoding: 'utf8',
  });
  t.is(child.status, 0, child.stderr);
  const { results, bfloat16Engine, cpuBfloat16 } = JSON.parse(child.stdout) as {
    results: Array<{ name: string; engine: string; relative: number }>;
    bfloat16Engine: string;
    cpuBfloat16: boolean;
  };
  t.is(results.length, 4);
  for (const r of results) {
    t.is(r.engine, 'onednn', r.name);
    t.log(`AVX2 ${r.name}: max relative difference ${r.relative.toExponential(2)}`);
    t.true(r.relative <= 1e-4, `${r.name}: ${r.relative}`);
  }
  // without native bfloat16 the modules run under autocast, where LibTorch can; else a DeviceError
  t.is(bfloat16Engine, cpuBfloat16 ? 'none' : 'DeviceError');
});

test.serial('no architecture falls back to oneDNN reference kernels; Winograd serves the 3x3 convolutions on AVX-512', async (t) => {
  // Reference kernels are correct but hundreds of times slower (ResNeXt's grouped convolutions
  // got one when forced into the blocked layout: 1.4 s instead of 4 ms per forward).
  const child = spawnSync(process.execPath, ['--import=tsx', 'test/helpers/print-plans.ts'], {
    env: { ...process.env, LIBTORCH_RESNET_PRINT_ENGINE: '1', LIBTORCH_RESNET_ENGINE: 'auto' },
    encoding: 'utf8',
  });
  t.is(child.status, 0, child.stderr);
  const plans = child.stderr.split('\n').filter((line) => line.startsWith('onednn engine:'));
  t.is(plans.length, 4, child.stderr);
  const counts = plans.map((line) => {
    const m = /\((\d+) Winograd convolutions, (\d+) reference kernels\)/.exec(line);
    if (!m) throw new Error(`unexpected plan line: ${line}`);
    return { winograd: Number(m[1]), reference: Number(m[2]) };
  });
  for (const [i, name] of ['resnet18', 'resnet50', 'resnext50_32x4d', 'resnet20'].entries()) {
    t.is(counts[i]!.reference, 0, `${name}: ${plans[i]}`);
  }
  if (oneDnnAvx512) {
    t.true(counts[0]!.winograd > 0 && counts[1]!.winograd > 0, plans.join('\n'));
  } else {
    t.is(counts[0]!.winograd + counts[1]!.winograd, 0, 'oneDNN 2.6 has Winograd kernels for AVX-512 only');
  }
  t.is(counts[2]!.winograd, 0, 'grouped convolutions have no Winograd kernel');
});
