// Weights files end to end: a torchvision-written .pth gives torchvision's outputs; what we save
// loads in Python with weights_only=True and gives the same outputs there; registry names use
// torch.hub's cache; URLs download; the CLI converts both ways.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, mkdir, copyFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadWeights, resnet18, resnet50, WeightsError, type Tensor } from '../lib/index.ts';
import { cacheDir, compare, ensureFixtures, readFixture, systemPython } from './helpers/fixtures.ts';

const run = promisify(execFile);
const TOLERANCE = 1e-4;
ensureFixtures();
const pth50 = join(cacheDir, 'resnet50.pth');
const pth18 = join(cacheDir, 'resnet18-classes10-in1.pth');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'resnet-weights-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function sameTensors(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void; true: (v: boolean, m?: string) => void }, a: Record<string, Tensor>, b: Record<string, Tensor>) {
  t.deepEqual(Object.keys(a), Object.keys(b), 'keys');
  for (const key of Object.keys(a)) {
    t.deepEqual(a[key]!.shape, b[key]!.shape, `${key} shape`);
    const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    t.true(bytes(a[key]!).equals(bytes(b[key]!)), `${key} bytes`);
  }
}

test.serial('a resnet50 .pth written by torchvision loads and gives torchvision\'s outputs', async (t) => {
  const fixture = await readFixture('resnet50');
  const model = await resnet50({ weights: pth50 });
  t.is(model.config.weights, pth50);
  const diff = compare(await model.forward(fixture.tensors.get('input')!), fixture.tensors.get('eval/output')!);
  t.true(diff.maxRel <= TOLERANCE, `max abs diff ${diff.maxAbs}`);
  model.dispose();
});

test.serial('a .pth we save loads in Python with weights_only=True and gives the same outputs there', async (t) => {
  const fixture = await readFixture('resnet50');
  const model = await resnet50({ weights: pth50 });
  const ours = await model.forward(fixture.tensors.get('input')!);
  const saved = join(tmp, 'ours.pth');
  await model.save(saved);
  model.dispose();
  const { stdout } = await run(systemPython, ['test/fixtures/check_saved.py', saved, join(cacheDir, 'resnet50.safetensors')], { maxBuffer: 1 << 26 });
  const python = JSON.parse(stdout) as { keys: number; output: number[] };
  t.is(python.keys, 320);
  const theirs = Float32Array.from(python.output);
  let maxAbs = 0;
  theirs.forEach((x, i) => (maxAbs = Math.max(maxAbs, Math.abs(x - ours.data[i]!))));
  t.true(maxAbs <= TOLERANCE * Math.max(1, ...theirs.map(Math.abs)), `max abs diff ${maxAbs}`);
  // ... and the file reads back into the same tensors here.
  sameTensors(t, await loadWeights(saved), await loadWeights(pth50));
});

test.serial('safetensors round trip through save() and load()', async (t) => {
  const a = await resnet18({ numClasses: 10, inChannels: 1, weights: pth18 });
  const path = join(tmp, 'r18.safetensors');
  await a.save(path);
  const b = await resnet18({ numClasses: 10, inChannels: 1, seed: 3 });
  t.deepEqual(await b.load(path), { missingKeys: [], unexpectedKeys: [] });
  sameTensors(t, await b.stateDict(), await a.stateDict());
  sameTensors(t, await loadWeights(path), await a.stateDict());
  a.dispose();
  b.dispose();
});

test.serial('weights that do not fit fail with WeightsError, and the half-built model is freed', async (t) => {
  const error = await t.throwsAsync(resnet18({ weights: pth50 }), { instanceOf: WeightsError });
  t.regex(error!.message, /^Error\(s\) in loading state_dict for ResNet:\n\tUnexpected key\(s\) in state_dict: "layer1\.0\.conv3\.weight"/);
  t.regex(error!.message, /size mismatch for layer1\.0\.conv1\.weight: copying a param with shape torch\.Size\(\[64, 64, 1, 1\]\) from checkpoint, the shape in current model is torch\.Size\(\[64, 64, 3, 3\]\)\./);
  // Another architecture's file: PyTorch's lines, cut short, and a summary (it was 8,300 characters).
  t.regex(error!.message, /"layer1\.0\.conv3\.weight", .*, \.\.\. \(10 of \d+ shown\)\. \n/);
  t.regex(error!.message, /\n\t\.\.\. and \d+ more size or dtype mismatches\.\n/);
  t.regex(error!.message, /\n\tIn all: 0 missing, \d+ unexpected and \d+ mismatched of the model's 122 keys \(the file has 320\): is it for another architecture or number of classes\?$/);
  t.true(error!.message.length < 3000, `${error!.message.length} characters`);
  await t.throwsAsync(resnet18({ weights: join(tmp, 'missing.pth') }), { instanceOf: WeightsError, message: /missing\.pth/ });
});

test.serial('a registry name uses the file torch.hub already has (TORCH_HOME)', async (t) => {
  const home = join(tmp, 'torch-home');
  const checkpoints = join(home, 'hub', 'checkpoints');
  await mkdir(checkpoints, { recursive: true });
  const source = await resnet18({ seed: 42 });
  await source.save(join(checkpoints, 'resnet18-f37072fd.pth'));
  const previous = process.env.TORCH_HOME;
  process.env.TORCH_HOME = home;
  try {
    const model = await resnet18({ weights: 'DEFAULT', progress: false });
    t.is(model.config.weights, 'IMAGENET1K_V1');
    t.is(model.weights?.fileName, 'resnet18-f37072fd.pth');
    t.is(model.weights?.transforms.resizeSize, 256);
    sameTensors(t, await model.stateDict(), await source.stateDict());
    model.dispose();
  } finally {
    if (previous === undefined) delete process.env.TORCH_HOME;
    else process.env.TORCH_HOME = previous;
    source.dispose();
  }
});

test.serial('a URL is downloaded once into the cache, with progress, then loaded', async (t) => {
  const bytes = await readFile(pth18);
  const name = `r18-${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}.pth`;
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url !== `/${name}`) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}`;
  const cache = join(tmp, 'url-cache');
  const fixture = await readFixture('resnet18-classes10-in1');
  try {
    const seen: number[] = [];
    const model = await resnet18({ numClasses: 10, inChannels: 1, seed: 0 });
    await model.load(url, { cacheDir: cache, progress: (p) => seen.push(p.received) });
    t.true(seen.length > 0 && seen.at(-1) === bytes.length, 'progress reached the file size');
    const diff = compare(await model.forward(fixture.tensors.get('input')!), fixture.tensors.get('eval/output')!);
    t.true(diff.maxRel <= TOLERANCE);
    await model.load(url, { cacheDir: cache });
    t.is(hits, 1, 'the second load used the cache');
    t.true((await readFile(join(cache, name))).equals(bytes), 'the cached file is the served file');
    model.dispose();
  } finally {
    server.close();
  }
});

const cli = (...args: string[]) => run(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args]);

test.serial('resnet convert: .pth -> .safetensors -> .pth keeps every tensor', async (t) => {
  const st = join(tmp, 'converted.safetensors');
  const back = join(tmp, 'converted.pth');
  const first = JSON.parse((await cli('convert', pth18, st, '--json')).stdout);
  t.deepEqual(first, { input: pth18, output: st, format: 'safetensors', tensors: 122 });
  await cli('convert', st, back);
  sameTensors(t, await loadWeights(back), await loadWeights(pth18));
});

test.serial('resnet CLI exit codes: 2 for usage, 1 for failed work', async (t) => {
  const usage = await t.throwsAsync(cli('convert', 'only-one.pth'));
  t.is((usage as { code?: number }).code, 2);
  const failed = await t.throwsAsync(cli('convert', join(tmp, 'nope.pth'), join(tmp, 'x.safetensors'), '--json'));
  t.is((failed as { code?: number }).code, 1);
  t.is(JSON.parse((failed as unknown as { stdout: string }).stdout).error.code, 'ERR_RESNET_WEIGHTS');
  const info = JSON.parse((await cli('info', 'resnet50', '--json')).stdout);
  t.is(info.numParameters, 25557032);
});
