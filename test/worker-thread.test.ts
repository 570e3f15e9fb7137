// The addon keeps its state per environment, so it loads and runs in worker_threads too, while
// the main thread uses it at the same time.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { resnet18 } from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';

const script = new URL('./helpers/worker-entry.mjs', import.meta.url);

function startWorker(input: Float32Array, keepAlive = false): Worker {
  return new Worker(script, { workerData: { input: [...input], keepAlive }});
}

function result(worker: Worker): Promise<{ shape: number[]; data: number[] }> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
  });
}

test('two workers and the main thread run models at once and agree', async (t) => {
  const x = randomTensor([1, 3, 32, 32], 4);
  const main = await resnet18({ numClasses: 10, seed: 21 });
  const [a, b, ours] = await Promise.all([result(startWorker(x.data)), result(startWorker(x.data)), main.forward(x)]);
  main.dispose();
  t.deepEqual(a.shape, [1, 10]);
  t.deepEqual(a.data, [...ours.data]);
  t.deepEqual(b.data, [...ours.data]);
});

test('a worker that exits with a model still alive ends cleanly', async (t) => {
  const worker = startWorker(new Float32Array(3 * 32 * 32), true);
  const code = await new Promise((resolve) => worker.once('exit', resolve));
  t.is(code, 0);
});

// Hardening: terminating a worker while it imports the package, creates models, loads weights or
// runs a forward used to abort the whole process (SIGABRT: an error thrown into the shutting-down
// environment reached std::terminate). The workers run in a child process so that an abort shows
// as its exit status instead of taking the test runner down.
test('worker.terminate() at any moment leaves the process alive', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import=tsx', new URL('./helpers/terminate-workers.ts', import.meta.url).pathname, '12'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  t.is(signal, null, out);
  t.is(code, 0, out);
  t.regex(out, /terminated 12 workers/);
});
