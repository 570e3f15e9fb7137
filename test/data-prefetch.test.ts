// Batches are built off the main thread, ahead of a slow consumer, and the worker ends with the
// iteration: on completion, on break, and it never holds the process open when idle.
import test from 'ava';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { FashionMNIST } from '../lib/data/datasets.ts';
import type { ImageDataset } from '../lib/data/dataset.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
let fashion: Promise<ImageDataset> | undefined;
const loadFashion = () => (fashion ??= FashionMNIST.load({ split: 'train' }));
const cropFlip = { crop: { padding: 4 }, hflip: true };

test.serial('a slow consumer finds batches ready: the producer runs ahead by the prefetch depth, no further', async (t) => {
  const ds = await loadFashion();
  const it = ds.batches({ batchSize: 128, shuffle: true, seed: 1, augment: cropFlip, prefetch: 2 });
  const ahead: number[] = [];
  for await (const batch of it) {
    t.deepEqual(batch.images.shape, [128, 1, 28, 28]);
    // The "training step": as long as the producer needs to fill the prefetch window (no clock
    // bound: a slow machine only takes longer), then a little more, to see that it stops there.
    for (let waited = 0; it.produced - it.consumed < 2 && it.running && waited < 30_000; waited += 5) await sleep(5);
    await sleep(20);
    ahead.push(it.produced - it.consumed);
    if (it.consumed === 12) break;
  }
  t.log(`batches ready when the consumer came back: ${ahead.join(' ')}`);
  t.true(ahead.every((n) => n >= 1), 'the next batch was always ready');
  t.true(ahead.every((n) => n <= 2), 'never more than prefetch batches ahead');
  t.false(it.running, 'breaking out ended the worker');
});

test.serial('the event loop keeps turning while 20 batches of 128 are built, and the work is not on the main thread', async (t) => {
  const ds = await loadFashion();
  for await (const _ of ds.batches({ batchSize: 128, prefetch: 1 })) break; // warm up the main thread's code paths
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  const it = ds.batches({ batchSize: 128, shuffle: true, seed: 2, augment: { ...cropFlip, randomErasing: {} } });
  // Starting a worker costs the main thread a few ms (the Worker constructor): measure from the
  // first batch on, when only building and delivering batches remain.
  let before = performance.eventLoopUtilization();
  let buildBefore = 0;
  let turnsBefore = 0;
  let images = 0;
  for await (const batch of it) {
    if (it.consumed === 1) [before, buildBefore, turnsBefore] = [performance.eventLoopUtilization(), it.buildMs, turns];
    else images += batch.labels.shape[0]!;
    if (it.consumed === 21) break;
  }
  const mainThread = performance.eventLoopUtilization(before);
  const building = it.buildMs - buildBefore;
  clearInterval(timer);
  t.is(images, 20 * 128);
  t.log(`after the first batch: the 1 ms timer fired ${turns - turnsBefore} times; main thread busy ${mainThread.active.toFixed(1)} ms, worker building ${building.toFixed(1)} ms`);
  // No clock bound (a slow or busy machine stretches everything): had the batches been built
  // here, no timer could fire between them and the main thread would have been busy at least as
  // long as the worker.
  t.true(turns - turnsBefore >= 1, `the timer fired ${turns - turnsBefore} times while 20 batches were delivered`);
  t.true(mainThread.active < building, `main thread ${mainThread.active} ms, worker ${building} ms`);
});

test.serial('a whole Fashion-MNIST epoch, batch 128, crop + flip, arrives and then the worker ends', async (t) => {
  const ds = await loadFashion();
  const it = ds.batches({ batchSize: 128, shuffle: true, seed: 3, augment: cropFlip, prefetch: 4 });
  let images = 0;
  for await (const batch of it) images += batch.labels.shape[0]!;
  t.is(images, 60000); // speed is measured in bench/
  t.false(it.running, 'the worker ends when the last batch has arrived');
});

/** Runs `code` (ESM, with the TypeScript sources importable) in a fresh node; resolves with its exit. */
function runNode(code: string, timeoutMs = 30000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { cwd: repo });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const childPrelude = `
  import { ImageDataset } from './lib/data/dataset.ts';
  const ds = new ImageDataset({ pixels: new Uint8Array(1000 * 64), shape: [1000, 1, 8, 8], labels: new Array(1000).fill(0), classes: ['a'] });
`;

test('breaking out of the loop ends the worker: the process exits by itself', async (t) => {
  const result = await runNode(`${childPrelude}
    const it = ds.batches({ batchSize: 10, prefetch: 5 });
    for await (const batch of it) { if (it.consumed === 3) break; }
    console.log('after break, running:', it.running);
  `);
  t.is(result.stderr, '');
  t.is(result.code, 0);
  t.is(result.stdout.trim(), 'after break, running: false');
});

test('an iterator abandoned mid-epoch (no break, no return) does not keep the process alive', async (t) => {
  const result = await runNode(`${childPrelude}
    const it = ds.batches({ batchSize: 10, prefetch: 5 });
    await it.next();
    // Wait (polling, however long the machine takes) until the prefetch window is full: the worker is idle.
    while (it.produced < 6) await new Promise((resolve) => setTimeout(resolve, 5));
    console.log('abandoned with the worker', it.running ? 'alive' : 'gone', 'and', it.produced, 'batches produced');
  `);
  t.is(result.stderr, '');
  t.is(result.code, 0);
  t.is(result.stdout.trim(), 'abandoned with the worker alive and 6 batches produced');
});

test('a consumer awaiting a batch keeps the process alive until it arrives', async (t) => {
  const result = await runNode(`${childPrelude}
    const it = ds.batches({ batchSize: 1000, prefetch: 0 });
    const { value } = await it.next(); // nothing else holds the event loop open meanwhile
    console.log('got', value.indices.length);
  `);
  t.is(result.code, 0);
  t.is(result.stdout.trim(), 'got 1000');
});
