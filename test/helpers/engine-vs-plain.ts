// Child process for inference-engine.test.ts: runs the oneDNN engine and the plain modules on a
// few architectures and prints, as JSON, the engine in use and the largest relative difference.
// Run with ONEDNN_MAX_CPU_ISA set, it exercises oneDNN's paths for older CPUs (no blocked
// 16-channel layout, no Winograd, no bfloat16) on this machine.
import { DeviceError, cpuBfloat16Available, createResNet, resnet18, resnet20, resnext50_32x4d, type ResNet } from '../../lib/index.ts';
import { maxAbsDiff, randomTensor } from './inputs.ts';

const cases: Array<[string, () => Promise<ResNet>, number[]]> = [
  ['resnet18', () => resnet18({ seed: 0, numClasses: 5 }), [2, 3, 48, 40]],
  ['resnext50_32x4d', () => resnext50_32x4d({ seed: 0, numClasses: 5 }), [1, 3, 40, 40]],
  ['dilated bottleneck', () => createResNet({ block: 'bottleneck', layers: [1, 1, 1, 1], numClasses: 3, replaceStrideWithDilation: [false, true, true], seed: 0 }), [2, 3, 40, 40]],
  ['resnet20 option A', () => resnet20({ seed: 0, numClasses: 3 }), [3, 3, 32, 32]],
];

const results: Array<{ name: string; engine: string; relative: number }> = [];
for (const [name, build, shape] of cases) {
  const model = await build();
  const x = randomTensor(shape, 7);
  const engine = await model.inferenceEngine();
  const fast = (await model.forward(x)).data;
  await model.setInferenceEngine('none');
  const plain = (await model.forward(x)).data;
  results.push({ name, engine, relative: maxAbsDiff(fast, plain) / Math.max(1, ...Array.from(plain, Math.abs)) });
  model.dispose();
}
// With oneDNN limited by the environment while the CPU still reports AVX-512, LibTorch's own
// bfloat16 convolutions pick kernels oneDNN then refuses: the model is refused up front.
let bfloat16Engine: string;
try {
  const bf16 = await resnet20({ seed: 0, precision: 'bfloat16' });
  bfloat16Engine = await bf16.inferenceEngine();
  bf16.dispose();
} catch (error) {
  if (!(error instanceof DeviceError)) throw error;
  bfloat16Engine = 'DeviceError';
}
process.stdout.write(JSON.stringify({ results, bfloat16Engine, cpuBfloat16: cpuBfloat16Available() }));
