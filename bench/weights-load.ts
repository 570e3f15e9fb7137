// Load time of resnet50 weights into a model: a torchvision-written .pth and the same weights as
// .safetensors, ours (read + loadStateDict) beside Python's torch.load + load_state_dict.
//   node --import=tsx bench/weights-load.ts   (needs the test fixtures: npm test, or
//   /usr/bin/python3 test/fixtures/generate.py resnet50)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWeights, resnet50 } from '../lib/index.ts';
import { median, runPython, timeRuns, writeResult } from './util.ts';

const pth = 'test/fixtures/cache/resnet50.pth';
if (!existsSync(pth)) throw new Error(`${pth} is missing: run /usr/bin/python3 test/fixtures/generate.py resnet50`);
const dir = mkdtempSync(join(tmpdir(), 'resnet-load-'));
const safetensors = join(dir, 'resnet50.safetensors');

const model = await resnet50({ seed: 0 });
await model.load(pth);
await model.save(safetensors);
const ours = async (path: string) => median(await timeRuns(async () => model.loadStateDict(await loadWeights(path)), 5, 1));
const rows = [
  { file: 'resnet50 .pth (torch.save)', oursMs: await ours(pth), pytorchMs: median(runPython<{ times_ms: number[] }>('bench/torch_load.py', [pth]).times_ms) },
  { file: 'resnet50 .safetensors', oursMs: await ours(safetensors), pytorchMs: null },
];
model.dispose();
rmSync(dir, { recursive: true, force: true });

console.log('| file | ours ms | PyTorch torch.load + load_state_dict ms |');
console.log('|---|---|---|');
for (const r of rows) console.log(`| ${r.file} | ${r.oursMs.toFixed(0)} | ${r.pytorchMs === null ? 'n/a (no safetensors package)' : r.pytorchMs.toFixed(0)} |`);
writeResult('weights-load', { rows });
