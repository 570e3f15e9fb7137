// Worker entry (plain JavaScript, see worker-entry.mjs): imports the package, then loops native
// calls until the parent terminates the worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-busy.ts');
