// Runs in a worker_thread (see worker-thread.test.ts): builds a model, runs one forward, reports.
import { parentPort, workerData } from 'node:worker_threads';
import { resnet18, Tensor } from '../../lib/index.ts';

const { input, keepAlive } = workerData as { input: number[]; keepAlive: boolean };
const model = await resnet18({ numClasses: 10, seed: 21 });
if (keepAlive) {
  // Leave the model undisposed and end the worker: its environment cleanup must free it.
  (globalThis as { keep?: unknown }).keep = model;
  process.exit(0);
}
const out = await model.forward(new Tensor(Float32Array.from(input), [1, 3, 32, 32]));
model.dispose();
parentPort!.postMessage({ shape: out.shape, data: [...out.data] });
