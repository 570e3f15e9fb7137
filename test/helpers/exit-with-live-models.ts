// Run as a child process by dispose-and-order.test.ts: builds models, uses them, never disposes
// them, and lets the process end by itself. The environment's cleanup must stop their threads.
import { resnet18, Tensor } from '../../lib/index.ts';

const models = await Promise.all([resnet18({ seed: 0 }), resnet18({ seed: 1 })]);
await Promise.all(models.map((m) => m.forward(new Tensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]))));
await models[0]!.trainer({ optimizer: { type: 'sgd', lr: 0.1 } }).step(new Tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]), [0, 1]);
console.log('done');
