// precision 'bfloat16' on the CPU against PyTorch's own CPU bfloat16 autocast, on the parity
// fixtures (torchvision weights with non-trivial BatchNorm statistics). bfloat16 cannot equal
// float32, and our rounding points differ from autocast's (the oneDNN engine rounds BatchNorm-folded
// weights; autocast rounds the raw ones and runs BatchNorm in float32), so the rule is the one
// docs/GPU.md uses for autocast: our distance to PyTorch's float32 logits must be at most twice
// PyTorch's own autocast distance, plus 1e-3 * max(1, max |logit|).
import test from 'ava';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuBfloat16Available, createModel, createResNet, type ArchitectureName, type ResNet, type ResNetSpecOptions } from '../lib/index.ts';
import { oneDnnNativeBfloat16 } from './helpers/cpu.ts';
import { cacheDir, compare, ensureFixtures, readFixture, withPrefix } from './helpers/fixtures.ts';

const cases = ensureFixtures();
const report = join(cacheDir, 'bfloat16-report.md');
writeFileSync(report, '| case | PyTorch autocast vs float32 | ours, oneDNN engine | ours, plain modules under autocast |\n|---|---|---|---|\n');

// Where LibTorch cannot run bfloat16 convolutions (oneDNN capped below the CPU's AVX-512), there is
// no PyTorch reference either; test/precision.test.ts checks the refusal there.
const serial = cpuBfloat16Available() ? test.serial : test.serial.skip;
for (const name of cases) {
  serial(`${name}: bfloat16 is as close to float32 as PyTorch's autocast`, async (t) => {
    const fixture = await readFixture(name);
    const options = JSON.parse(fixture.metadata.options ?? '{}') as Record<string, unknown>;
    const builder = fixture.metadata.builder!;
    const model: ResNet =
      builder === 'createResNet'
        ? await createResNet({ ...(options as unknown as ResNetSpecOptions), seed: 0, precision: 'bfloat16' })
        : await createModel(builder as ArchitectureName, { ...options, seed: 0, precision: 'bfloat16' });
    try {
      await model.loadStateDict(withPrefix(fixture, 'state/'));
      const input = fixture.tensors.get('input')!;
      const float32 = fixture.tensors.get('eval/output')!;
      const theirs = compare(fixture.tensors.get('eval_bf16/output')!, float32);
      t.true(theirs.maxRel > 0, 'PyTorch autocast really rounds to bfloat16');
      const bound = 2 * theirs.maxRel + 1e-3;

      // the oneDNN engine in bfloat16 where oneDNN has native bfloat16, else autocast on the modules
      await model.setInferenceEngine('auto'); // the default, also where LIBTORCH_RESNET_ENGINE forces another
      t.is(await model.inferenceEngine(), oneDnnNativeBfloat16 ? 'onednn' : 'none');
      const engine = compare(await model.forward(input), float32);
      t.true(engine.maxRel > 0, 'the default engine really runs in bfloat16');
      t.true(engine.maxRel <= bound, `oneDNN engine: ${engine.maxRel} vs PyTorch autocast ${theirs.maxRel}`);

      await model.setInferenceEngine('none');
      const plain = compare(await model.forward(input), float32);
      t.true(plain.maxRel <= bound, `plain modules: ${plain.maxRel} vs PyTorch autocast ${theirs.maxRel}`);

      const row = `| ${name} | ${theirs.maxRel.toExponential(2)} | ${engine.maxRel.toExponential(2)} | ${plain.maxRel.toExponential(2)} |`;
      appendFileSync(report, `${row}\n`);
      t.log(row);
    } finally {
      model.dispose();
    }
  });
}
