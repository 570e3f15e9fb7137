// Worker entry in plain JavaScript: Node 20 does not apply an --import hook from a Worker's
// execArgv to the worker's own entry module, so register tsx here and then load the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./worker-forward.ts');
