// Worker entry: loads the addon through lib/native.ts, as a streaming worker does, and exits.
import { register } from 'tsx/esm/api';

register();
await import('../../lib/native.ts');
