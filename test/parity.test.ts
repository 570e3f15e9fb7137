// Parity with torchvision: the same weights and input give the same logits (eval and train mode),
// the same state_dict keys and shapes, the same parameter count and the same updated BatchNorm
// statistics. Tolerance: max |ours - torch| <= 1e-4 * max(1, max |torch|).
import test from 'ava';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createModel, createResNet, type ArchitectureName, type ResNet, type ResNetSpecOptions } from '../lib/index.ts';
import { cacheDir, compare, ensureFixtures, readFixture, withPrefix } from './helpers/fixtures.ts';

const TOLERANCE = 1e-4;
const cases = ensureFixtures();
const report = join(cacheDir, 'parity-report.md');
writeFileSync(report, '| case | eval max abs | eval max rel | train max abs | train max rel |\n|---|---|---|---|---|\n');

for (const name of cases) {
  test.serial(`${name} matches torchvision`, async (t) => {
    const fixture = await readFixture(name);
    const options = JSON.parse(fixture.metadata.options ?? '{}') as Record<string, unknown>;
    const builder = fixture.metadata.builder!;
    const model: ResNet =
      builder === 'createResNet'
        ? await createResNet({ ...(options as unknown as ResNetSpecOptions), seed: 0 })
        : await createModel(builder as ArchitectureName, { ...options, seed: 0 });
    try {
      const expectedState = withPrefix(fixture, 'state/');
      const ours = await model.stateDict();
      t.deepEqual(Object.keys(ours), Object.keys(expectedState), 'state_dict keys and their order');
      for (const [key, tensor] of Object.entries(expectedState)) {
        t.deepEqual(ours[key]!.shape, tensor.shape, `shape of ${key}`);
        t.is(ours[key]!.dtype, tensor.dtype, `dtype of ${key}`);
      }
      t.is(model.numParameters(), Number(fixture.metadata.num_params), 'numParameters()');

      t.deepEqual(await model.loadStateDict(expectedState), { missingKeys: [], unexpectedKeys: [] });
      const input = fixture.tensors.get('input')!;

      const evalDiff = compare(await model.forward(input), fixture.tensors.get('eval/output')!);
      t.true(evalDiff.maxRel <= TOLERANCE, `eval logits: max abs diff ${evalDiff.maxAbs} at scale ${evalDiff.scale}`);

      await model.train();
      const trainDiff = compare(await model.forward(input), fixture.tensors.get('train/output')!);
      t.true(trainDiff.maxRel <= TOLERANCE, `train logits: max abs diff ${trainDiff.maxAbs} at scale ${trainDiff.scale}`);

      const after = await model.stateDict();
      for (const [key, expected] of Object.entries(withPrefix(fixture, 'train/state/'))) {
        if (expected.dtype === 'int64') {
          t.deepEqual(after[key]!.data, expected.data, `${key} after a train-mode forward`);
        } else {
          const diff = compare(after[key]!, expected);
          t.true(diff.maxRel <= TOLERANCE, `${key} after a train-mode forward: max abs diff ${diff.maxAbs}`);
        }
      }
      const row = `| ${name} | ${evalDiff.maxAbs.toExponential(2)} | ${evalDiff.maxRel.toExponential(2)} | ${trainDiff.maxAbs.toExponential(2)} | ${trainDiff.maxRel.toExponential(2)} |`;
      appendFileSync(report, `${row}\n`);
      t.log(row);
    } finally {
      model.dispose();
    }
  });
}

test.serial('the parity check can fail: a 1% change of one weight is caught', async (t) => {
  const fixture = await readFixture('resnet18');
  const model = await createModel('resnet18', { seed: 0 });
  const state = withPrefix(fixture, 'state/');
  const conv = state['layer4.1.conv2.weight']!;
  const changed = Float32Array.from(conv.data as Float32Array, (x) => x * 1.01);
  await model.loadStateDict({ ...state, 'layer4.1.conv2.weight': { data: changed, shape: conv.shape } });
  const diff = compare(await model.forward(fixture.tensors.get('input')!), fixture.tensors.get('eval/output')!);
  model.dispose();
  t.true(diff.maxRel > TOLERANCE, `max rel diff ${diff.maxRel}`);
});
