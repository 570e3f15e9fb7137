// A child process (see worker-thread.test.ts) that starts workers using the addon and terminates
// each one at a random moment: while it imports the package, creates models, loads weights or runs
// a forward. The process must survive every termination and print how many it did.
import { Worker } from 'node:worker_threads';

const rounds = Number(process.argv[2] ?? 12);
const entry = new URL('./worker-busy-entry.mjs', import.meta.url);
let state = 12345;
const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);

for (let i = 0; i < rounds; i++) {
  const worker = new Worker(entry);
  worker.on('error', (error) => {
    console.error(`worker ${i}: ${error}`);
    process.exitCode = 1;
  });
  // Spread over the import (first few hundred ms) and the loop after it.
  await new Promise((r) => setTimeout(r, 20 + random() * 1500));
  await worker.terminate();
}
console.log(`terminated ${rounds} workers`);
