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
