// Proves that binding.gyp (the node-gyp alternative to the cmake-js build) compiles the addon
// and that the result works: it builds a copy of the sources in a temp dir, so the cmake-js
// output in build/ is left alone.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface NativeTensor {
  dtype: string;
  shape: number[];
  buffer: ArrayBuffer;
}
interface NativeModel {
  numParameters(): number;
  forward(input: { dtype: string; shape: number[]; data: Float32Array }): Promise<NativeTensor>;
  inferenceEngine(): Promise<string>;
  dispose(): Promise<void> | void;
}
interface Addon {
  libtorchVersion(): string;
  onednnEngineCompiled(): boolean;
  createModel(spec: Record<string, unknown>, device: string, seed: number): Promise<NativeModel>;
}

/** Runs a command; resolves with its exit code and its stdout and stderr interleaved. */
function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

test('binding.gyp builds a working addon with node-gyp', async (t) => {
  t.timeout(15 * 60 * 1000);

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'libtorch-resnet-gyp-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.copyFile(path.join(repo, 'binding.gyp'), path.join(dir, 'binding.gyp'));
  await fs.cp(path.join(repo, 'native'), path.join(dir, 'native'), { recursive: true });
  await fs.mkdir(path.join(dir, 'scripts'));
  await fs.copyFile(path.join(repo, 'scripts/find-libtorch.mjs'), path.join(dir, 'scripts/find-libtorch.mjs'));
  await fs.symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');

  // node-gyp run outside npm does not read .npmrc's nodedir: use the running node's own headers
  // when they are installed, rather than downloading them.
  const args = [path.join(repo, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', '--jobs', '2'];
  const nodePrefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(path.join(nodePrefix, 'include/node/common.gypi'))) {
    args.push(`--nodedir=${nodePrefix}`);
  }
  const { code, output } = await run(process.execPath, args, dir);
  t.is(code, 0, `node-gyp rebuild failed (exit ${code}):\n${output.slice(-4000)}`);
  if (code !== 0) return;

  const addonPath = path.join(dir, 'build/Release/libtorch_resnet.node');
  t.true(existsSync(addonPath), `no ${addonPath}; node-gyp output:\n${output.slice(-2000)}`);

  // LibTorch must be found through the RPATH, without LD_LIBRARY_PATH.
  const readelf = spawnSync('readelf', ['-d', addonPath], { encoding: 'utf8' });
  if (readelf.error) {
    t.log('readelf not available: RPATH not checked');
  } else {
    const libDir = spawnSync(process.execPath, ['scripts/find-libtorch.mjs', '--lib-dir'], { cwd: dir, encoding: 'utf8' });
    const rpath = /\(RPATH\)\s+Library rpath: \[(.*)\]/.exec(readelf.stdout);
    t.truthy(rpath, `no RPATH entry in:\n${readelf.stdout}`);
    t.true(rpath?.[1]?.split(':').includes(libDir.stdout.trim()), `RPATH ${rpath?.[1]} lacks ${libDir.stdout.trim()}`);
  }

  const addon = createRequire(import.meta.url)(addonPath) as Addon;
  t.regex(addon.libtorchVersion(), /^\d+\.\d+/);

  const model = await addon.createModel(
    {
      block: 'basic',
      stem: 'imagenet',
      shortcut: 'B',
      widths: [64, 128, 256, 512],
      layers: [1, 1, 1, 1],
      numClasses: 10,
      zeroInitResidual: false,
      groups: 1,
      widthPerGroup: 64,
      inChannels: 3,
      replaceStrideWithDilation: [false, false, false],
    },
    'cpu',
    0,
  );
  t.true(model.numParameters() > 0);
  const out = await model.forward({ dtype: 'float32', shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
  t.is(out.dtype, 'float32');
  t.deepEqual(out.shape, [1, 10]);
  t.true(out.buffer instanceof ArrayBuffer);
  t.is(out.buffer.byteLength, 40);
  // Like the cmake-js build, it compiles the oneDNN engine in where LibTorch links a shared oneDNN
  // (Debian's does; install-system-deps.sh installs the headers) and makes it the CPU default.
  const onednn = spawnSync(process.execPath, [path.join(repo, 'scripts/find-libtorch.mjs'), '--onednn'], { encoding: 'utf8' });
  t.is(onednn.stdout.trim(), '1', 'this machine can build the oneDNN engine');
  t.true(addon.onednnEngineCompiled());
  t.is(await model.inferenceEngine(), 'onednn');
  await model.dispose();
});
