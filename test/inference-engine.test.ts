// The inference engine (eval-mode forward through LibTorch's optimized graph) equals the plain
// modules within 1e-4 relative, and is rebuilt whenever the weights or the mode change.
import test from 'ava';
import { createResNet, resnet18, resnet20, resnext50_32x4d, type ResNet } from '../lib/index.ts';
import { maxAbsDiff, randomTensor } from './helpers/inputs.ts';

async function bothWays(model: ResNet, shape: number[]): Promise<{ engine: Float32Array; plain: Float32Array }> {
  const x = randomTensor(shape, 3);
  await model.setInferenceEngine(true);
  const engine = (await model.forward(x)).data;
  await model.setInferenceEngine(false);
  const plain = (await model.forward(x)).data;
  await model.setInferenceEngine(true);
  return { engine, plain };
}

const relative = (a: Float32Array, b: Float32Array) => maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));

/** Non-trivial BatchNorm statistics, so that folding them into the convolutions matters. */
async function trained(model: ResNet, shape: number[]): Promise<void> {
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
  for (let i = 0; i < 3; i++) await trainer.step(randomTensor(shape, 10 + i), Array.from({ length: shape[0]! }, (_, k) => k % 3));
}

const cases: Array<[string, () => Promise<ResNet>, number[]]> = [
  ['resnet18', () => resnet18({ seed: 0, numClasses: 3 }), [2, 3, 64, 64]],
  ['resnext50_32x4d (groups)', () => resnext50_32x4d({ seed: 0, numClasses: 3 }), [2, 3, 64, 64]],
  ['resnet50 with dilation', () => createResNet({ block: 'bottleneck', layers: [1, 1, 1, 1], numClasses: 3, replaceStrideWithDilation: [false, true, true], seed: 0 }), [2, 3, 64, 64]],
  ['resnet20 option A, grayscale', () => resnet20({ seed: 0, numClasses: 3, inChannels: 1 }), [4, 1, 28, 28]],
  ['resnet20 option B', () => resnet20({ seed: 0, numClasses: 3, shortcut: 'B' }), [4, 3, 32, 32]],
  ['plain20', () => resnet20({ seed: 0, numClasses: 3, plain: true }), [4, 3, 32, 32]],
];

for (const [name, build, shape] of cases) {
  test.serial(`${name}: engine equals the plain modules`, async (t) => {
    const model = await build();
    await trained(model, shape);
    const { engine, plain } = await bothWays(model, shape);
    const rel = relative(engine, plain);
    t.log(`max relative difference ${rel.toExponential(2)}`);
    t.true(rel <= 1e-4, `max relative difference ${rel}`);
    model.dispose();
  });
}

test.serial('the engine follows new weights and training', async (t) => {
  const model = await resnet18({ seed: 0, numClasses: 3 });
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
  await model.setInferenceEngine(false);
  t.true(relative(afterTraining, (await model.forward(x)).data) <= 1e-4);
  other.dispose();
  model.dispose();
});
