// Runs in a worker_thread that its parent terminates at random moments (terminate-workers.ts):
// creation, weight loading and forwards, in a loop, so a termination lands in the middle of them.
import { createResNet, Tensor } from '../../lib/index.ts';

const model = await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], numClasses: 4, seed: 1 });
const weights = await model.stateDict();
const input = new Tensor(new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
for (;;) {
  await model.loadStateDict(weights);
  await model.forward(input);
  await model.stateDict();
  await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], numClasses: 4, seed: 2 }).then((m) => m.dispose());
}
