// Child process for inference-engine.test.ts: one forward through the oneDNN engine for a few
// architectures, run with LIBTORCH_RESNET_PRINT_ENGINE=1 so that each plan's summary (primitives,
// Winograd convolutions, reference kernels) goes to stderr, one line per architecture in order.
import { resnet18, resnet20, resnet50, resnext50_32x4d } from '../../lib/index.ts';
import { randomTensor } from './inputs.ts';

for (const build of [resnet18, resnet50, resnext50_32x4d, resnet20]) {
  const model = await build({ seed: 0, numClasses: 3 });
  await model.forward(randomTensor([1, 3, 64, 64], 1));
  model.dispose();
}
