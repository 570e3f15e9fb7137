// `resnet train` as a data-parallel job: --nproc-per-node starts the ranks itself, and a job that
// PyTorch's own launcher (torchrun) starts joins through the environment it sets. Rank 0 alone
// prints and writes; every rank ends.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { distributedBackends, loadModel } from '../lib/index.ts';
import { systemPython } from './helpers/fixtures.ts';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const gated = distributedBackends().includes('gloo') ? test.serial : test.serial.skip;
let root: string;

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'resnet-ddp-cli-'));
  for (const [split, count] of [['train', 8], ['val', 3]] as const) {
    for (const [c, name] of ['dark', 'light'].entries()) {
      await mkdir(join(root, 'data', split, name), { recursive: true });
      for (let i = 0; i < count; i++) {
        const pixels = Buffer.alloc(16 * 16 * 3, c ? 200 - i * 3 : 40 + i * 3);
        await writeFile(join(root, 'data', split, name, `${i}.png`), await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer());
      }
    }
  }
});

test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const trainArgs = (dir: string) => [
  'train', '--dataset', 'folder', '--root', join(root, 'data'), '--size', '16', '--arch', 'resnet20', '--epochs', '2', '--batch-size', '4',
  '--lr', '0.05', '--run-dir', dir, '--out', join(dir, 'w.safetensors'), '--json',
];

gated('--nproc-per-node 2: two ranks, one summary from rank 0, its files, a model that loads', async (t) => {
  const dir = join(root, 'nproc');
  const { stdout } = await run(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...trainArgs(dir), '--nproc-per-node', '2', '--dist-timeout', '30'], {
    cwd: repo,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  const lines = stdout.trim().split('\n');
  t.is(lines.length, 1, 'one JSON summary (rank 0 only)');
  const summary = JSON.parse(lines[0]!) as { epochs: Array<{ val: { count: number } }> };
  t.is(summary.epochs.length, 2);
  t.is(summary.epochs[1]!.val.count, 6, 'the validation totals cover every image once');
  t.deepEqual((await readdir(dir)).sort(), ['checkpoint-1.safetensors', 'checkpoint-2.safetensors', 'metrics.jsonl', 'w.safetensors']);
  const epochs = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').filter((l) => l.includes('"type":"epoch"'));
  t.is(epochs.length, 2, 'one writer of metrics.jsonl');
  const model = await loadModel(join(dir, 'w.safetensors'));
  t.deepEqual(model.classes, ['dark', 'light']);
  model.dispose();
});

const torchrun = existsSync(systemPython);
(torchrun ? gated : test.serial.skip)('a job started by torchrun: each rank joins from the environment torchrun sets', async (t) => {
  const dir = join(root, 'torchrun');
  // PyTorch 1.13's torchrun spells its flags with underscores (2.x takes both). Under Python 3.11
  // (Debian 12) its default --redirects/--tee of 0 fail to parse (a zero-valued enum.Flag member is
  // no longer iterated); 2 (stderr only) parses and leaves stdout alone.
  const { stdout } = await run(
    systemPython,
    ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--redirects', '2', '--tee', '2', '--no_python', process.execPath, '--import=tsx', 'bin/resnet.ts', ...trainArgs(dir)],
    { cwd: repo, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } },
  );
  const summaries = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  t.is(summaries.length, 1, stdout);
  t.is((JSON.parse(summaries[0]!) as { epochs: unknown[] }).epochs.length, 2);
  t.true(existsSync(join(dir, 'w.safetensors')));
});
