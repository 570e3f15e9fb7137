// Training equals PyTorch's loop: from the same weights and the same batches, K = 5 optimizer
// steps give the same losses and the same weights and BatchNorm statistics, within 1e-4
// relative, for SGD (momentum, nesterov, dampening, weight decay, norm/bias exclusion, clipping,
// class weights, label smoothing) and AdamW, on the CIFAR nets (option A, B, plain) and resnet18.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createModel, createResNet, readSafetensors, type ArchitectureName, type ResNetSpecOptions, type Tensor, type TrainerOptions } from '../lib/index.ts';
import { compare, ensureGenerated } from './helpers/fixtures.ts';

const TOLERANCE = 1e-4;
const folder = ensureGenerated('generate_train.py', 'train');
const cases = readdirSync(folder).filter((f) => f.endsWith('.safetensors')).map((f) => f.replace('.safetensors', ''));

test('there are training cases', (t) => {
  t.true(cases.length >= 10, `${cases.length} cases`);
});

for (const name of cases) {
  test.serial(`${name}: 5 steps equal PyTorch's`, async (t) => {
    const { tensors, metadata } = await readSafetensors(join(folder, `${name}.safetensors`));
    const pick = (prefix: string) => Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    const modelOptions = JSON.parse(metadata.model!) as Record<string, unknown>;
    const trainerOptions = JSON.parse(metadata.trainer!) as TrainerOptions;
    const { builder, ...rest } = modelOptions;
    const model = builder
      ? await createModel(builder as ArchitectureName, { ...rest, seed: 1 })
      : await createResNet({ ...(rest as unknown as ResNetSpecOptions), seed: 1 });
    try {
      await model.loadStateDict(pick('state/'));
      const trainer = model.trainer(trainerOptions);
      const losses = tensors.loss!.data as Float64Array;
      for (let k = 0; k < losses.length; k++) {
        const r = await trainer.step(tensors[`input/${k}`]!, tensors[`labels/${k}`]!);
        const rel = Math.abs(r.loss - losses[k]!) / Math.max(1, Math.abs(losses[k]!));
        t.true(rel <= TOLERANCE, `step ${k}: loss ${r.loss} vs PyTorch ${losses[k]}`);
      }
      const ours = await model.stateDict();
      const start = pick('state/');
      const moved = Object.keys(start).filter((k) => start[k]!.dtype === 'float32' && compare(ours[k]!, start[k]!).maxAbs > 0);
      t.true(moved.length > 0, 'the steps changed the weights');
      let worst = 0;
      for (const [key, expected] of Object.entries(pick('final/'))) {
        if (expected.dtype === 'int64') {
          t.deepEqual(ours[key]!.data, expected.data, key);
          continue;
        }
        const diff = compare(ours[key]! as Tensor, expected);
        worst = Math.max(worst, diff.maxRel);
        t.true(diff.maxRel <= TOLERANCE, `${key}: max abs diff ${diff.maxAbs}`);
      }
      t.log(`worst relative difference over the final weights and statistics: ${worst.toExponential(2)}`);
    } finally {
      model.dispose();
    }
  });
}

test.serial('the check can fail: a learning rate 1% off is caught', async (t) => {
  const { tensors, metadata } = await readSafetensors(join(folder, 'sgd-momentum-wd.safetensors'));
  const pick = (prefix: string) => Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  const model = await createResNet({ ...(JSON.parse(metadata.model!) as ResNetSpecOptions), seed: 1 });
  await model.loadStateDict(pick('state/'));
  const options = JSON.parse(metadata.trainer!) as TrainerOptions;
  const trainer = model.trainer({ ...options, optimizer: { ...options.optimizer, lr: options.optimizer.lr * 1.01 } });
  for (let k = 0; k < 5; k++) await trainer.step(tensors[`input/${k}`]!, tensors[`labels/${k}`]!);
  const diff = compare((await model.stateDict())['fc.weight']!, pick('final/')['fc.weight']!);
  model.dispose();
  t.true(diff.maxRel > TOLERANCE, `max rel diff ${diff.maxRel}`);
});
