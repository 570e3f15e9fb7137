// Starts a worker thread whose entry is a TypeScript module of this package: the compiled .js
// beside the caller when running from the build, the .ts file itself when running from source
// under tsx (whose loader worker threads do not inherit on Node 20, so the worker registers it).
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `name` without extension, resolved against the caller's `import.meta.url`. */
export function startWorker(name: string, callerUrl: string, options: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const file = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return new Worker(file, options);
  const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); });`;
  return new Worker(entry, { ...options, eval: true });
}

/**
 * Terminates workers and resolves once they have exited. terminate()'s promise settles on the
 * worker's exit event, which an otherwise empty event loop does not wait for (an unreferenced
 * worker, or one whose port closed first): a script awaiting this at its top level would end
 * with "unsettled top-level await". A timer keeps the loop alive until then.
 */
export async function terminateAll(workers: readonly Worker[]): Promise<void> {
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await Promise.all(workers.map((w) => w.terminate()));
  } finally {
    clearInterval(keepAlive);
  }
}
