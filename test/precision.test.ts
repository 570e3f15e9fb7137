// Mixed precision and memory format on the CPU: bfloat16 autocast close to float32, channels_last
// equal to the default layout, float16 refused on the CPU with a way forward. (CUDA float16 and the
// GPU numbers are scripts/gpu-check.sh's work.)
import test from 'ava';
import { DeviceError, InvalidArgumentError, cpuBfloat16Available, resnet18, resnet20, type ModelOptions } from '../lib/index.ts';
import { maxAbsDiff, randomTensor } from './helpers/inputs.ts';

const relative = (a: Float32Array, b: Float32Array) => maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));

async function logits(options: ModelOptions, train = false): Promise<Float32Array> {
  const model = await resnet18({ seed: 3, numClasses: 10, ...options });
  if (train) await model.train();
  const out = await model.forward(randomTensor([2, 3, 64, 64], 4));
  model.dispose();
  return out.data;
}

// bfloat16 on the CPU needs LibTorch to run bfloat16 convolutions; where it cannot (oneDNN capped
// below the CPU's AVX-512 by ONEDNN_MAX_CPU_ISA) the model is refused instead.
const bf16 = cpuBfloat16Available();
const bf16Test = bf16 ? test : test.skip;
const noBf16Test = bf16 ? test.skip : test;

noBf16Test('bfloat16 on a CPU where LibTorch cannot run it is a DeviceError that says what to use', async (t) => {
  await t.throwsAsync(resnet18({ precision: 'bfloat16' }), { instanceOf: DeviceError, message: /bfloat16 convolutions are not available on this CPU.*use precision 'float32'/ });
});

bf16Test('bfloat16 autocast stays close to float32 and returns float32', async (t) => {
  const reference = await logits({});
  const bf16 = await logits({ precision: 'bfloat16' });
  const rel = relative(bf16, reference);
  t.log(`bfloat16 vs float32: max relative difference ${rel.toExponential(2)}`);
  t.true(rel > 0 && rel < 0.05, `${rel}`);
});

test('channels_last gives the float32 numbers, in eval and in train mode', async (t) => {
  t.true(relative(await logits({ memoryFormat: 'channels_last' }), await logits({})) <= 1e-4);
  t.true(relative(await logits({ memoryFormat: 'channels_last' }, true), await logits({}, true)) <= 1e-4);
});

bf16Test('training steps run under bfloat16 autocast', async (t) => {
  const model = await resnet20({ seed: 0, numClasses: 4, precision: 'bfloat16', inChannels: 1 });
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
  const x = randomTensor([8, 1, 16, 16]);
  const labels = [0, 1, 2, 3, 0, 1, 2, 3];
  const first = await trainer.step(x, labels);
  let last = first;
  for (let i = 0; i < 10; i++) last = await trainer.step(x, labels);
  t.true(Number.isFinite(first.loss) && last.loss < first.loss, `loss ${first.loss} -> ${last.loss}`);
  model.dispose();
});

test('float16 on the CPU is a DeviceError that says what to use; bad values are rejected', async (t) => {
  await t.throwsAsync(resnet18({ precision: 'float16' }), { instanceOf: DeviceError, message: /use precision 'bfloat16' on the CPU/ });
  await t.throwsAsync(resnet18({ precision: 'half' as 'float16' }), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'float32', 'bfloat16', 'float16' for precision but received 'half' of type string",
  });
});
