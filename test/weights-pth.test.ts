// readPth / writePth against files PyTorch wrote (test/fixtures/generate_weights.py) and read
// back: every dtype bit for bit, views and strides, nested and DataParallel checkpoints, refusals
// (malicious pickles, the legacy format, compressed or foreign files), and round trips
// ours -> torch.load(weights_only=True) -> torch.save -> ours.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResNetError, UnsafeWeightsError, WeightsError } from '../lib/errors.ts';
import { Tensor } from '../lib/tensor.ts';
import { isTuple, unpickle, type PickleValue } from '../lib/weights/pickle.ts';
import { readPth, writePth } from '../lib/weights/pth.ts';
import { storageLoader, torchGlobals } from '../lib/weights/torch-pickle.ts';
import { crc32, openSource, ZipReader } from '../lib/weights/zip.ts';
import { writeZip, zipToBytes, type ZipWriteEntry } from '../lib/weights/zip-writer.ts';
import { ensureGenerated, systemPython as python } from './helpers/fixtures.ts';

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const generator = join(fixturesDir, 'generate_weights.py');

interface Described {
  dtype: string;
  shape: number[];
  sha256: string;
  hex?: string;
}

// Every .pth fixture generate_weights.py writes (its FIXTURES), and the description of their tensors.
const fixtureNames = [
  'dtypes', 'views', 'nested', 'extras', 'ambiguous', 'dataparallel', 'resnet18', 'small',
  'legacy', 'compressed', 'torchscript', 'malicious-posix', 'malicious-os', 'malicious-builtins',
];
// The stamp covers the folder's path too: the malicious fixtures embed their marker's path.
const weightsDir = ensureGenerated('generate_weights.py', 'weights', {
  outputs: [...fixtureNames.map((name) => `${name}.pth`), 'reference.json'],
  stampPath: true,
});
const reference = JSON.parse(readFileSync(join(weightsDir, 'reference.json'), 'utf8')) as Record<string, Record<string, Described>>;
const fixture = (name: string) => join(weightsDir, `${name}.pth`);
const scratch = mkdtempSync(join(tmpdir(), 'weights-pth-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

function bytesOf(tensor: Tensor): Uint8Array {
  return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
}

/** What generate_weights.py's describe() says about the same tensor. */
function describe(tensor: Tensor): Described {
  const bytes = bytesOf(tensor);
  const out: Described = { dtype: tensor.dtype, shape: [...tensor.shape], sha256: createHash('sha256').update(bytes).digest('hex') };
  if (bytes.length <= 256) out.hex = Buffer.from(bytes).toString('hex');
  return out;
}

function describeAll(sd: Record<string, Tensor>): Record<string, Described> {
  return Object.fromEntries(Object.entries(sd).map(([key, tensor]) => [key, describe(tensor)]));
}

/** torch.load(path, weights_only=True) in Python, described; optionally re-saved by torch.save. */
function torchLoad(path: string, resave?: string): { type: string; keys: string[]; tensors: Record<string, Described> } {
  const out = join(scratch, `check-${Math.random().toString(36).slice(2)}.json`);
  execFileSync(python, [generator, '--check-load', path, out, ...(resave ? ['--resave', resave] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(readFileSync(out, 'utf8'));
}

test('every dtype reads bit for bit, NaN, infinities, -0 and subnormals included', async (t) => {
  const sd = await readPth(fixture('dtypes'));
  t.deepEqual(Object.keys(sd), Object.keys(reference.dtypes!));
  t.deepEqual(describeAll(sd), reference.dtypes);
  t.true(sd.float32!.data instanceof Float32Array);
  t.true(sd.float64!.data instanceof Float64Array);
  t.true(sd.float16!.data instanceof Uint16Array && sd.float16!.dtype === 'float16');
  t.true(sd.bfloat16!.data instanceof Uint16Array && sd.bfloat16!.dtype === 'bfloat16');
  t.deepEqual([...(sd.int64!.data as BigInt64Array)], [-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n, -1n, 2n ** 40n]);
  t.deepEqual([...(sd.int16!.data as Int16Array)], [-32768, 32767, 0, -1, 300]);
  t.deepEqual([...(sd.int8!.data as Int8Array)], [-128, 127, 0, -1, 5, 6]);
  t.is(sd.bool!.dtype, 'bool');
  t.deepEqual([...sd.bool!.data], [1, 0, 1, 0, 0, 1]);
  t.deepEqual(sd.scalar!.shape, []);
  t.deepEqual([...sd.scalar!.data], [2.5]);
  t.deepEqual(sd.empty!.shape, [0, 3]);
});

test('views of shared storages, offsets, transposed, strided, expanded and permuted tensors', async (t) => {
  const sd = await readPth(fixture('views'));
  t.deepEqual(describeAll(sd), reference.views);
  const values = (key: string) => [...(sd[key]!.data as Float32Array)];
  t.deepEqual(values('row'), [6, 7, 8, 9, 10, 11]);
  t.deepEqual(values('transposed').slice(0, 6), [0, 6, 12, 18, 1, 7]);
  t.deepEqual(values('strided'), [6, 8, 10, 12, 14, 16, 18, 20, 22]);
  t.deepEqual(values('element'), [5]);
  t.deepEqual(values('expanded'), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
  t.deepEqual([...(sd.long_tail!.data as BigInt64Array)], [7n, 8n, 9n]);
  t.deepEqual([...(sd.long_step!.data as BigInt64Array)], [0n, 3n, 6n, 9n]);
  t.deepEqual(values('param'), [0, 1, 2, 3]);
  // Contiguous views stay views of the one storage; other layouts are copies.
  t.is(sd.row!.data.buffer, sd.base!.data.buffer);
  t.not(sd.transposed!.data.buffer, sd.base!.data.buffer);
});

test('a file and its bytes read the same', async (t) => {
  const bytes = await readFile(fixture('views'));
  t.deepEqual(describeAll(await readPth(bytes)), reference.views);
  t.deepEqual(describeAll(await readPth(new Uint8Array(bytes))), reference.views);
});

test('nested checkpoint: the model is found, or named with { key }', async (t) => {
  const expected = reference.nested!;
  t.deepEqual(describeAll(await readPth(fixture('nested'))), expected);
  t.deepEqual(describeAll(await readPth(fixture('nested'), { key: 'model' })), expected);
  const notTensors = await t.throwsAsync(readPth(fixture('nested'), { key: 'optimizer' }), { instanceOf: WeightsError });
  t.regex(notTensors!.message, /The value under 'optimizer' in .* is a dict, not a flat mapping of names to tensors/);
  const missing = await t.throwsAsync(readPth(fixture('nested'), { key: 'ema' }), { instanceOf: WeightsError });
  t.regex(missing!.message, /has no key 'ema' — keys present: 'model', 'optimizer', 'epoch'$/);
});

test('a checkpoint with no common key: the error lists its keys, { key } picks one', async (t) => {
  const error = await t.throwsAsync(readPth(fixture('extras')), { instanceOf: WeightsError });
  t.regex(error!.message, /Cannot tell which state dict to read from .*extras\.pth/);
  t.true(error!.message.endsWith("pass { key } — keys present: 'weights', 'meta', 'step'"), error!.message);
  t.deepEqual(describeAll(await readPth(fixture('extras'), { key: 'weights' })), reference.nested);

  const ambiguous = await t.throwsAsync(readPth(fixture('ambiguous')), { instanceOf: WeightsError });
  t.regex(ambiguous!.message, /several keys hold a state dict \('state_dict', 'model'\); pass \{ key \} — keys present: 'model', 'state_dict'$/);
  t.deepEqual(describeAll(await readPth(fixture('ambiguous'), { key: 'state_dict' })), reference.nested);
});

test('non-tensor values (optimizer state, metadata) parse as plain JS values', async (t) => {
  const load = async (name: string) => {
    const source = await openSource(fixture(name));
    try {
      const zip = await ZipReader.open(source);
      const root = [...zip.entries.keys()][0]!.split('/')[0]!;
      return unpickle(await zip.read(`${root}/data.pkl`), { label: name, globals: torchGlobals, persistentLoad: storageLoader() });
    } finally {
      await source.close();
    }
  };
  const extras = (await load('extras')) as Map<PickleValue, PickleValue>;
  t.is(extras.get('step'), 2 ** 40);
  const meta = extras.get('meta') as Map<PickleValue, PickleValue>;
  t.is(meta.get('name'), 'run-1');
  t.is(meta.get('acc'), 0.75);
  t.is(meta.get('big'), 2n ** 70n);
  t.is(meta.get('neg'), -5);
  t.is(meta.get('none'), null);
  t.is(meta.get('flag'), true);
  t.is(meta.get(1), 'int key');
  const tags = meta.get('tags') as PickleValue[];
  t.deepEqual(tags, ['a', ['b', 2]]);
  t.false(isTuple(tags));
  t.true(isTuple(tags[1]!));

  const nested = (await load('nested')) as Map<PickleValue, PickleValue>;
  t.is(nested.get('epoch'), 3);
  const groups = (nested.get('optimizer') as Map<PickleValue, PickleValue>).get('param_groups') as Map<PickleValue, PickleValue>[];
  t.is(groups[0]!.get('lr'), 1e-3);
  t.deepEqual(groups[0]!.get('betas'), [0.9, 0.999]);
  t.is(groups[0]!.get('amsgrad'), false);
  t.deepEqual(groups[0]!.get('params'), [0, 1, 2, 3, 4, 5]);
});

test('DataParallel: stripPrefix true removes module., a string removes that prefix', async (t) => {
  const raw = await readPth(fixture('dataparallel'));
  t.true(Object.keys(raw).every((key) => key.startsWith('module.')));
  t.deepEqual(describeAll(await readPth(fixture('dataparallel'), { stripPrefix: true })), reference.dataparallel);
  t.deepEqual(describeAll(await readPth(fixture('dataparallel'), { stripPrefix: false })), describeAll(raw));
  const partial = await readPth(fixture('dataparallel'), { stripPrefix: 'module.1.' });
  t.deepEqual(Object.keys(partial).slice(0, 5), ['module.0.weight', 'module.0.bias', 'weight', 'bias', 'running_mean']);
  await t.throwsAsync(readPth(fixture('dataparallel'), { stripPrefx: true } as never), { instanceOf: ResNetError, message: /Unknown option 'stripPrefx'/ });
  const clash = join(scratch, 'clash.pth');
  await writePth(clash, { 'module.a': new Tensor(new Float32Array(1), [1]), a: new Tensor(new Float32Array(1), [1]) });
  await t.throwsAsync(readPth(clash, { stripPrefix: true }), { instanceOf: WeightsError, message: /Stripping 'module\.' from the keys of .* gives 'a' twice/ });
});

for (const [name, global] of [
  ['malicious-posix', 'posix.system'],
  ['malicious-os', 'os.system'],
  ['malicious-builtins', 'builtins.eval'],
] as const) {
  test(`a pickle that calls ${global} is refused and nothing runs`, async (t) => {
    const marker = join(weightsDir, `${name}.marker`);
    rmSync(marker, { force: true });
    for (const source of [fixture(name), await readFile(fixture(name))]) {
      const error = await t.throwsAsync(readPth(source), { instanceOf: UnsafeWeightsError });
      t.regex(error!.message, new RegExp(`^Refusing to load weights: the pickle in .* asks for the global '${global.replace('.', '\\.')}', which is not on the allowlist \\(collections\\.OrderedDict, torch\\._utils\\._rebuild_tensor_v2, `));
      t.is((error as UnsafeWeightsError).code, 'ERR_RESNET_UNSAFE_WEIGHTS');
    }
    t.false(existsSync(marker));
  });
}

test('the legacy (pre-1.6) format is refused with a way out', async (t) => {
  const error = await t.throwsAsync(readPth(fixture('legacy')), { instanceOf: WeightsError });
  t.regex(error!.message, /legacy \(pre-1\.6\) serialization format .* re-save it with torch\.save in PyTorch >= 1\.6$/);
});

test('files that are not checkpoints say what their first bytes were', async (t) => {
  const html = join(scratch, 'page.pth');
  writeFileSync(html, '<!DOCTYPE html><html>not found</html>');
  const error = await t.throwsAsync(readPth(html), { instanceOf: WeightsError });
  t.regex(error!.message, /not a PyTorch checkpoint .*its first bytes are 3c 21 44 4f 43 54 59 50 45 20 68 74 6d 6c 3e 3c \('<!DOCTYPE html><'\)$/);
  await t.throwsAsync(readPth(new Uint8Array(0)), { instanceOf: WeightsError, message: /the file is empty/ });
  await t.throwsAsync(readPth(join(scratch, 'missing.pth')), { instanceOf: WeightsError, message: /Cannot read weights file .*ENOENT/ });
  await t.throwsAsync(readPth(scratch), { instanceOf: WeightsError, message: /EISDIR/ });
  await t.throwsAsync(readPth(42 as never), { instanceOf: ResNetError });
});

// Hardening: the archive's entry names say it is TorchScript before any (deflated) entry is read.
test('a real torch.jit.save archive is named as such, not as a compressed entry', async (t) => {
  const error = await t.throwsAsync(readPth(fixture('torchscript')), { instanceOf: WeightsError });
  t.regex(error!.message, /torchscript\.pth' is a TorchScript archive \(torch\.jit\.save\), not a torch\.save checkpoint$/);
});

test('compressed entries are refused, naming the entry and the method', async (t) => {
  const error = await t.throwsAsync(readPth(fixture('compressed')), { instanceOf: WeightsError });
  t.regex(error!.message, /entry 'archive\/data\.pkl' is compressed with method 8 \(deflate\)/);
});

test('a corrupted tensor fails its CRC-32 check', async (t) => {
  const bytes = await readFile(fixture('small'));
  const source = await openSource(bytes);
  const zip = await ZipReader.open(source);
  const entry = [...zip.entries.values()].find((e) => e.name.endsWith('/data/0'))!;
  await source.close();
  const dataStart = entry.localHeaderOffset + 30 + bytes.readUInt16LE(entry.localHeaderOffset + 26) + bytes.readUInt16LE(entry.localHeaderOffset + 28);
  bytes[dataStart + 5] = bytes[dataStart + 5]! ^ 0xff;
  await t.throwsAsync(readPth(bytes), { instanceOf: WeightsError, message: /entry 'small\/data\/0' is corrupt: CRC-32/ });
});

test('torchvision resnet18 state dict: every tensor as PyTorch wrote it', async (t) => {
  const sd = await readPth(fixture('resnet18'));
  t.is(Object.keys(sd).length, 122);
  t.deepEqual(Object.keys(sd), Object.keys(reference.resnet18!));
  t.deepEqual(describeAll(sd), reference.resnet18);
  t.deepEqual(sd['fc.weight']!.shape, [1000, 512]);
  t.is(sd['bn1.num_batches_tracked']!.dtype, 'int64');
  t.deepEqual([...sd['bn1.num_batches_tracked']!.data], [7n]);
});

test('writePth: torch.load(weights_only=True) reads every dtype identically; readPth reads it and PyTorch\'s re-save back', async (t) => {
  const tensors = { ...(await readPth(fixture('dtypes'))), ...(await readPth(fixture('views'))) };
  Object.defineProperty(tensors, '__proto__', { value: new Tensor(new Int32Array([1, 2]), [2]), enumerable: true });
  tensors.big = new Tensor(new Float32Array(70_000).map((_, i) => i), [70_000]); // a size past 65535: BININT
  const ours = join(scratch, 'ours.pth');
  const resaved = join(scratch, 'resaved.pth');
  await writePth(ours, tensors);

  const expected = describeAll(tensors);
  const loaded = torchLoad(ours, resaved);
  t.is(loaded.type, 'OrderedDict');
  t.deepEqual(loaded.keys, Object.keys(tensors));
  t.deepEqual(loaded.tensors, expected);
  t.deepEqual(describeAll(await readPth(ours)), expected);
  const back = await readPth(resaved);
  t.deepEqual(describeAll(back), expected);
  t.true(Object.hasOwn(back, '__proto__'));
  t.is(Object.getPrototypeOf(back), Object.prototype);
  // This test's own temporary files only: other tests of this file write into `scratch` meanwhile.
  t.deepEqual(readdirSync(scratch).filter((f) => /^\.(ours|resaved)\.pth\..*\.tmp$/.test(f)), []);
});

test('writePth takes { data, shape } too, and replaces an existing file whole', async (t) => {
  const path = join(scratch, 'replace.pth');
  await writePth(path, { a: new Tensor(new Float32Array(1000), [10, 100]) });
  await writePth(path, { b: { data: new Int8Array([1, -2, 3]), shape: [3] } });
  t.deepEqual(Object.keys(await readPth(path)), ['b']);
  t.deepEqual(torchLoad(path).tensors.b, { dtype: 'int8', shape: [3], sha256: createHash('sha256').update(Buffer.from([1, 254, 3])).digest('hex'), hex: '01fe03' });
  await t.throwsAsync(writePth(path, { x: [1, 2] as never }), { instanceOf: ResNetError });
  await t.throwsAsync(writePth(join(scratch, 'no', 'such', 'dir.pth'), {}), { instanceOf: WeightsError, message: /Cannot write weights file .*ENOENT/ });
});

test('a write that fails half way leaves the destination as it was and no temporary file', async (t) => {
  const dir = join(scratch, 'atomic');
  mkdirSync(dir);
  const path = join(dir, 'weights.pth');
  await writePth(path, { a: new Tensor(new Float32Array([1, 2, 3]), [3]) });
  const before = readFileSync(path);
  function* failing(): Generator<ZipWriteEntry> {
    yield { name: 'archive/data/0', data: new Uint8Array(3 << 20) };
    throw new Error('the producer failed');
  }
  await t.throwsAsync(writeZip(path, failing()), { instanceOf: WeightsError, message: /Cannot write weights file .*the producer failed/ });
  t.deepEqual(readFileSync(path), before);
  t.deepEqual(readdirSync(dir), ['weights.pth']);
  // Renaming onto a directory fails after the whole file was written: it is cleaned up too.
  mkdirSync(join(dir, 'taken.pth', 'inside'), { recursive: true });
  await t.throwsAsync(writePth(join(dir, 'taken.pth'), {}), { instanceOf: WeightsError });
  t.deepEqual(readdirSync(dir).sort(), ['taken.pth', 'weights.pth']);
});

test('zip64: forced zip64 records on a small archive are read by us, Python\'s zipfile and torch.load', async (t) => {
  const source = await openSource(fixture('small'));
  const zip = await ZipReader.open(source);
  const entries: ZipWriteEntry[] = [];
  for (const name of zip.entries.keys()) entries.push({ name, data: await zip.read(name) });
  await source.close();
  const path = join(scratch, 'zip64.pth');
  await writeZip(path, entries, { forceZip64: true });
  const bytes = readFileSync(path);
  t.true(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'has a zip64 end of central directory');
  t.deepEqual(describeAll(await readPth(path)), reference.small);
  t.deepEqual(torchLoad(path).tensors, reference.small);
});

test('zip64: more than 65535 entries', async (t) => {
  const entries = Array.from({ length: 70_000 }, (_, i) => ({ name: `many/${i}`, data: Uint8Array.of(i & 0xff, (i >> 8) & 0xff) }));
  const path = join(scratch, 'many.zip');
  await writeZip(path, entries);
  const source = await openSource(path);
  try {
    const zip = await ZipReader.open(source);
    t.is(zip.entries.size, 70_000);
    t.deepEqual([...(await zip.read('many/69999'))], [69_999 & 0xff, (69_999 >> 8) & 0xff]);
  } finally {
    await source.close();
  }
  const check = 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.infolist()))';
  t.is(execFileSync(python, ['-c', check, path], { encoding: 'utf8' }).trim(), '70000');
  t.true(Buffer.from(zipToBytes(entries)).equals(readFileSync(path)), 'zipToBytes and writeZip write the same bytes');
});

// Hand-made pickles for a single float32 tensor 't' in a 4-element storage, with claims to test.
const text = (value: string) => [...Buffer.from(value)];
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const str = (value: string) => [0x58, ...u32(Buffer.byteLength(value)), ...text(value)];
const global = (module: string, name: string) => [0x63, ...text(`${module}\n${name}\n`)];
const long = (n: bigint) => [0x8a, 8, ...Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn))];
const tuple = (items: bigint[]) => [0x28, ...items.flatMap(long), 0x74];

type Claims = { numel?: bigint; offset?: bigint; size?: bigint[]; stride?: bigint[] };

function craftedPickle({ numel = 4n, offset = 0n, size = [4n], stride = [1n] }: Claims): Uint8Array {
  const ordered = [...global('collections', 'OrderedDict'), 0x29, 0x52];
  const pid = [0x28, ...str('storage'), ...global('torch', 'FloatStorage'), ...str('0'), ...str('cpu'), ...long(numel), 0x74, 0x51];
  const args = [0x28, ...pid, ...long(offset), ...tuple(size), ...tuple(stride), 0x89, ...ordered, 0x74];
  return Uint8Array.from([0x80, 2, ...ordered, ...str('t'), ...global('torch._utils', '_rebuild_tensor_v2'), ...args, 0x52, 0x73, 0x2e]);
}

function crafted(claims: Claims, pickle = craftedPickle(claims)): Uint8Array {
  return zipToBytes([{ name: 'a/data.pkl', data: pickle }, { name: 'a/data/0', data: new Uint8Array(16) }]);
}

test('crafted claims of huge sizes, offsets and strides are refused before any allocation', async (t) => {
  t.deepEqual([...(await readPth(crafted({}))).t!.data], [0, 0, 0, 0]);
  const refused = async (bytes: Uint8Array, message: RegExp) => {
    await t.throwsAsync(readPth(bytes), { instanceOf: WeightsError, message });
  };
  await refused(crafted({ size: [2n ** 40n], stride: [0n] }), /an expanded view of 1099511627776 elements from a storage of 4/);
  await refused(crafted({ size: [2n ** 20n, 2n ** 20n], stride: [0n, 0n] }), /an expanded view of 1099511627776 elements/);
  await refused(crafted({ size: [3n], stride: [2n] }), /stride \[2\]\) reaching element 4 of a storage of 4/);
  await refused(crafted({ offset: 2n ** 62n }), /\(REDUCE\): the storage offset must be a non-negative integer/);
  await refused(crafted({ numel: 2n ** 50n, size: [2n] }), /has 16 bytes, but 1125899906842624 float32 elements need/);
  await refused(crafted({ size: [2n ** 62n], stride: [1n] }), /the size must be a tuple of non-negative integers/);
  const lying = craftedPickle({});
  lying.set(u32(0xffffffff), lying.indexOf(0x58) + 1); // the first BINUNICODE's length
  await refused(crafted({}, lying), /at byte \d+ \(BINUNICODE\): needs 4294967295 bytes but only \d+ are left/);
});

test('deeply nested pickles are walked without recursion', async (t) => {
  const depth = 200_000;
  const pickle = new Uint8Array(2 + 2 * depth);
  pickle.set([0x80, 2]);
  pickle.fill(0x5d, 2, 2 + depth); // EMPTY_LIST, depth times
  pickle.fill(0x61, 2 + depth, 1 + 2 * depth); // APPEND each list to the one below
  pickle[1 + 2 * depth] = 0x2e; // STOP
  // Nested 200,000 deep: no stack overflow and no quadratic walk (which would not finish here).
  await t.throwsAsync(readPth(zipToBytes([{ name: 'a/data.pkl', data: pickle }])), {
    instanceOf: WeightsError,
    message: /holds a list, not a dict of tensors/,
  });
});

test('CRC-32: the standard check value, and every length modulo 4', (t) => {
  t.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  t.is(crc32(new Uint8Array(0)), 0);
  const check = 'import sys, zlib; print(" ".join(str(zlib.crc32(bytes(range(n)))) for n in range(12)))';
  const expected = execFileSync(python, ['-c', check], { encoding: 'utf8' }).trim().split(' ').map(Number);
  t.deepEqual(Array.from({ length: 12 }, (_, n) => crc32(Uint8Array.from({ length: n }, (_, i) => i))), expected);
});

test('data is 64-byte aligned, as in PyTorch\'s archives', async (t) => {
  const bytes = zipToBytes([{ name: 'a/x', data: Uint8Array.of(1) }, { name: 'a/longer-name', data: new Uint8Array(100) }]);
  const source = await openSource(bytes);
  const zip = await ZipReader.open(source);
  for (const entry of zip.entries.values()) {
    const header = new DataView(bytes.buffer, bytes.byteOffset + entry.localHeaderOffset);
    t.is((entry.localHeaderOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true)) % 64, 0);
  }
  await source.close();
});
