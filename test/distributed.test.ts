// Data-parallel training against PyTorch's DistributedDataParallel and under failure: 2 ranks on
// 127.0.0.1 (Gloo, one thread each) take the steps PyTorch's DDP took (test/fixtures/generate_ddp.py)
// and end with its weights, BatchNorm statistics and losses; half batches on 2 ranks equal one
// process on the whole batch; a rank that dies ends the job with a DistributedError naming it,
// and the job resumes from the last checkpoint to the weights of an uninterrupted run.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createResNet,
  distributedBackends,
  DistributedError,
  evaluate,
  ImageDataset,
  initProcessGroup,
  InvalidArgumentError,
  readSafetensors,
  type ProcessGroup,
  type ResNetSpecOptions,
  type Tensor,
} from '../lib/index.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const rankScript = join(root, 'test/helpers/ddp-rank.ts');
const gloo = distributedBackends().includes('gloo');
const gated = gloo ? test.serial : test.serial.skip;
const folder = gloo ? ensureGenerated('generate_ddp.py', 'ddp') : '';
const cases = gloo ? readdirSync(folder).filter((f) => f.endsWith('.safetensors')).map((f) => f.replace('.safetensors', '')) : [];

test('Gloo is built in where its headers were found (Debian: libgloo-dev)', (t) => {
  // The CI machine installs libgloo-dev (scripts/install-system-deps.sh): there it must be on.
  if (existsSync('/usr/include/gloo/context.h')) t.true(gloo, 'gloo headers are installed but the addon has no Gloo backend');
  else t.pass('no Gloo headers on this machine');
});

async function freePort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface RankExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `world` ranks of test/helpers/ddp-rank.ts to their ends. */
async function runRanks(args: string[], options: { world?: number; env?: Record<string, string> } = {}): Promise<RankExit[]> {
  const world = options.world ?? 2;
  const port = await freePort();
  return Promise.all(
    Array.from({ length: world }, (_, rank) => {
      const child = spawn(process.execPath, ['--import=tsx', rankScript, ...args], {
        cwd: root,
        env: { ...process.env, ...options.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      return new Promise<RankExit>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
    }),
  );
}

function relativeDifference(a: Tensor, b: Tensor): number {
  const x = a.data as ArrayLike<number | bigint>;
  const y = b.data as ArrayLike<number | bigint>;
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < y.length; i++) scale = Math.max(scale, Math.abs(Number(y[i])));
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(Number(x[i]) - Number(y[i])));
  return worst / scale;
}

function bitEqual(a: Tensor, b: Tensor): boolean {
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const pick = (tensors: Record<string, Tensor>, prefix: string) =>
  Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));

for (const name of cases) {
  gated(`${name}: 2 ranks equal PyTorch's DistributedDataParallel, and each other`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ddp-'));
    try {
      const file = join(folder, `${name}.safetensors`);
      // Each rank writes rank.safetensors.<rank>.
      const exits = await runRanks(['parity', file, join(dir, 'rank.safetensors')]);
      t.deepEqual(exits.map((e) => e.code), [0, 0], exits.map((e) => e.stderr + e.stdout).join('\n'));
      const fixture = (await readSafetensors(file)).tensors;
      const ours = await Promise.all([0, 1].map(async (r) => (await readSafetensors(join(dir, `rank.safetensors.${r}`))).tensors));
      let worst = 0;
      for (const r of [0, 1]) {
        const loss = ours[r]!.loss!;
        const expectedLoss = fixture[`loss/${r}`]!;
        t.true(relativeDifference(loss, expectedLoss) <= 1e-6, `rank ${r} losses ${Array.from(loss.data as Float64Array)} vs PyTorch ${Array.from(expectedLoss.data as Float64Array)}`);
        for (const [key, expected] of Object.entries(pick(fixture, `final/${r}/`))) {
          const diff = relativeDifference(ours[r]![`final/${key}`]!, expected);
          worst = Math.max(worst, diff);
          t.true(diff <= 1e-6, `rank ${r} ${key}: ${diff}`);
        }
      }
      // Parameters are the same bits on both ranks; BatchNorm statistics are each rank's own
      // after its last step (DDP broadcasts them before a forward, not after).
      const params = Object.keys(pick(fixture, 'final/0/')).filter((k) => !/running_|num_batches/.test(k));
      const unequal = params.filter((k) => !bitEqual(ours[0]![`final/${k}`]!, ours[1]![`final/${k}`]!));
      t.deepEqual(unequal, []);
      // And the run did start from different weights on each rank: the broadcast mattered.
      t.false(bitEqual(fixture['start/0/conv1.weight']!, fixture['start/1/conv1.weight']!));
      t.log(`worst relative difference to PyTorch: ${worst.toExponential(2)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

gated('2 ranks on half batches equal one process on the whole batch (BatchNorm frozen)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ddp-'));
  try {
    const file = join(folder, 'accumulate.safetensors');
    const exits = await runRanks(['frozen', file, join(dir, 'rank.safetensors')]);
    t.deepEqual(exits.map((e) => e.code), [0, 0], exits.map((e) => e.stderr + e.stdout).join('\n'));
    const [single] = await runRanks(['single', file, join(dir, 'single.safetensors')], { world: 1 });
    t.is(single!.code, 0, single!.stderr + single!.stdout);
    const two = (await readSafetensors(join(dir, 'rank.safetensors.0'))).tensors;
    const one = (await readSafetensors(join(dir, 'single.safetensors.0'))).tensors;
    let worst = 0;
    for (const [key, t1] of Object.entries(pick(one, 'final/'))) {
      const diff = relativeDifference(two[`final/${key}`]!, t1);
      worst = Math.max(worst, diff);
      t.true(diff <= 1e-5, `${key}: ${diff}`);
    }
    t.true(worst > 0 || bitEqual(two['final/fc.weight']!, one['final/fc.weight']!));
    t.log(`worst relative difference: ${worst.toExponential(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

gated('a rank that dies mid-epoch ends the job with a DistributedError naming it; the job resumes from the last checkpoint to the uninterrupted weights', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ddp-'));
  try {
    // Uninterrupted: 3 epochs of 6 steps per rank.
    const clean = await runRanks(['fit', join(dir, 'clean'), join(dir, 'clean.safetensors')]);
    t.deepEqual(clean.map((e) => e.code), [0, 0], clean.map((e) => e.stderr + e.stdout).join('\n'));
    // Rank 1 is killed (SIGKILL) at iteration 9, in the second epoch.
    const timeoutMs = 30_000;
    const crashed = await runRanks(['fit', join(dir, 'crash'), join(dir, 'crash.safetensors')], { env: { DIE_AT: '9', DDP_TEST_TIMEOUT_MS: String(timeoutMs) } });
    t.is(crashed[1]!.code, null, 'rank 1 was killed');
    t.is(crashed[0]!.code, 3, crashed[0]!.stderr + crashed[0]!.stdout);
    const report = JSON.parse(crashed[0]!.stdout.trim().split('\n').at(-1)!) as { error: string; lostRank: number | null; message: string };
    t.is(report.error, 'DistributedError');
    t.is(report.lostRank, 1, report.message);
    // Ended by the lost connection and the heartbeats, not by waiting out the group's timeout
    // (that path says "the timeout of ... was reached"); a hang is caught by ava's own timeout.
    t.regex(report.message, /lost rank 1 during/);
    t.notRegex(report.message, /timeout of/);
    // Only whole checkpoints: epoch 1's, and no partial file of epoch 2.
    t.deepEqual(readdirSync(join(dir, 'crash')).sort(), ['checkpoint-1.safetensors']);
    const resumed = await runRanks(['fit', join(dir, 'crash'), join(dir, 'resumed.safetensors')], { env: { RESUME: join(dir, 'crash', 'checkpoint-1.safetensors') } });
    t.deepEqual(resumed.map((e) => e.code), [0, 0], resumed.map((e) => e.stderr + e.stdout).join('\n'));
    const a = (await readSafetensors(join(dir, 'clean.safetensors.0'))).tensors;
    for (const r of [0, 1]) {
      const b = (await readSafetensors(join(dir, `resumed.safetensors.${r}`))).tensors;
      const differ = Object.keys(pick(a, 'final/')).filter((k) => !/running_|num_batches/.test(k) && !bitEqual(a[`final/${k}`]!, b[`final/${k}`]!));
      t.deepEqual(differ, [], `rank ${r} after resuming`);
      // Evaluation is reduced across ranks: both report the uninterrupted run's accuracy.
      t.deepEqual(Array.from(b.val!.data as Float64Array), Array.from(a.val!.data as Float64Array).slice(1));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// In one process: each group has its own thread, so two ranks can meet here.
async function pair(timeoutMs = 20_000): Promise<[ProcessGroup, ProcessGroup]> {
  const initMethod = `tcp://127.0.0.1:${await freePort()}`;
  return Promise.all([0, 1].map((rank) => initProcessGroup({ initMethod, rank, worldSize: 2, timeoutMs }))) as Promise<[ProcessGroup, ProcessGroup]>;
}

gated('evaluation with distributed: every rank gets the totals of the whole set', async (t) => {
  const groups = await pair();
  const n = 37;
  const pixels = new Uint8Array(n * 3 * 8 * 8).map((_, i) => (i * 7919) % 251);
  const data = new ImageDataset({ pixels, shape: [n, 3, 8, 8], labels: Array.from({ length: n }, (_, i) => i % 3), classes: ['a', 'b', 'c'] });
  const spec: ResNetSpecOptions = { block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 3, seed: 2 };
  const models = await Promise.all([0, 1, 2].map(() => createResNet(spec)));
  try {
    const whole = await evaluate(models[2]!, data, { batchSize: 8 });
    const parts = await Promise.all([0, 1].map((r) => evaluate(models[r]!, data, { batchSize: 8, distributed: groups[r]! })));
    for (const part of parts) {
      t.is(part.count, n);
      t.is(part.top1, whole.top1);
      t.true(Math.abs(part.loss - whole.loss) <= 1e-6 * Math.max(1, whole.loss));
    }
    t.deepEqual(await Promise.all(groups.map((g) => g.allReduceSum([1, g.rank, 0.5]))), [[2, 1, 1], [2, 1, 1]]);
  } finally {
    models.forEach((m) => m.dispose());
    await Promise.all(groups.map((g) => g.destroy()));
  }
});

gated('models that differ across ranks are a DistributedError, not a hang', async (t) => {
  const groups = await pair();
  const a = await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 3 });
  const b = await createResNet({ block: 'basic', stem: 'cifar', layers: [2, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 3 });
  try {
    const x = new Float32Array(2 * 3 * 8 * 8);
    const steps = [a, b].map((m, r) => m.trainer({ optimizer: { type: 'sgd', lr: 0.1 }, distributed: groups[r]! }).step({ data: x, shape: [2, 3, 8, 8] }, [0, 1]));
    for (const step of steps) {
      const error = await t.throwsAsync(step, { instanceOf: DistributedError });
      t.regex(error!.message, /differs across ranks/);
    }
  } finally {
    a.dispose();
    b.dispose();
    await Promise.all(groups.map((g) => g.destroy()));
  }
});

gated('bad configurations are clear errors: rank out of range, master unreachable, port taken, a rank twice, a rank missing', async (t) => {
  const port = await freePort();
  await t.throwsAsync(initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 2, worldSize: 2 }), { instanceOf: InvalidArgumentError, message: /rank in 0\.\.1/ });
  await t.throwsAsync(initProcessGroup({ initMethod: 'env://', rank: 0, worldSize: 1 }, {}), { instanceOf: DistributedError, message: /MASTER_ADDR/ });
  await t.throwsAsync(initProcessGroup({ initMethod: 'udp://x' }), { instanceOf: InvalidArgumentError });
  // Nobody hosts the store: rank 1 gives up after its timeout, saying where it looked.
  await t.throwsAsync(initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 1, worldSize: 2, timeoutMs: 1500 }), {
    instanceOf: DistributedError,
    message: new RegExp(`could not reach the master at 127\\.0\\.0\\.1:${port}`),
  });
  // Another program holds the port.
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(port, resolve));
  try {
    await t.throwsAsync(initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 2, timeoutMs: 1500 }), { instanceOf: DistributedError, message: /port in use/ });
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
  // Rank 1 twice: the second is refused at once; the job goes on with the first.
  const initMethod = `tcp://127.0.0.1:${await freePort()}`;
  const first = [0, 1].map((rank) => initProcessGroup({ initMethod, rank, worldSize: 2, timeoutMs: 20_000 }));
  const ok = await Promise.all(first);
  await t.throwsAsync(initProcessGroup({ initMethod, rank: 1, worldSize: 2, timeoutMs: 5000 }), { instanceOf: DistributedError, message: /Two processes joined as rank 1/ });
  await Promise.all(ok.map((g) => g.destroy()));
  // A rank that never comes is named once the timeout is over.
  await t.throwsAsync(initProcessGroup({ initMethod: `tcp://127.0.0.1:${await freePort()}`, rank: 0, worldSize: 3, timeoutMs: 1500 }), {
    instanceOf: DistributedError,
    message: /rank\(s\) 1, 2 did not join/,
  });
});
