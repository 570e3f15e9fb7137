// Load time of resnet50 weights into a model: a torchvision-written .pth and the same weights as
// .safetensors, ours (read + loadStateDict) beside Python's torch.load + load_state_dict.
//   node --import=tsx bench/weights-load.ts
// Uses the test fixture test/fixtures/cache/resnet50.pth when it is there; otherwise writes a
// resnet50 .pth with torch.save (bench/torch_load.py --make) into a temporary folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWeights, resnet50 } from '../lib/index.ts';
import { environment, median, runPython, timeRuns, uptimeLine, waitForQuiet, writeResult } from './util.ts';

const env = environment();
const loadBefore = uptimeLine();
const dir = mkdtempSync(join(tmpdir(), 'resnet-load-'));
const fixture = 'test/fixtures/cache/resnet50.pth';
const pth = existsSync(fixture) ? fixture : join(dir, 'resnet50.pth');
if (pth !== fixture) runPython('bench/torch_load.py', ['--make', pth]);
const safetensors = join(dir, 'resnet50.safetensors');

const model = await resnet50({ seed: 0 });
await model.load(pth);
await model.save(safetensors);
const ours = async (path: string) => {
  await waitForQuiet();
  return median(await timeRuns(async () => model.loadStateDict(await loadWeights(path)), 5, 1));
};
const theirs = async (path: string) => {
  await waitForQuiet();
  return median(runPython<{ times_ms: number[] }>('bench/torch_load.py', [path]).times_ms);
};
const rows = [
  { file: 'resnet50 .pth (torch.save)', oursMs: await ours(pth), pytorchMs: await theirs(pth) },
  { file: 'resnet50 .safetensors', oursMs: await ours(safetensors), pytorchMs: null },
];
model.dispose();
rmSync(dir, { recursive: true, force: true });

console.log(`${env.date}; load before: ${loadBefore}; after: ${uptimeLine()}\n`);
console.log('| file | ours ms | PyTorch torch.load + load_state_dict ms |');
console.log('|---|---|---|');
for (const r of rows) console.log(`| ${r.file} | ${r.oursMs.toFixed(0)} | ${r.pytorchMs === null ? 'n/a (no safetensors package)' : r.pytorchMs.toFixed(0)} |`);
writeResult('weights-load', { environment: env, loadBefore, file: pth === fixture ? fixture : 'torch.save of torchvision resnet50 (random init)', rows });
