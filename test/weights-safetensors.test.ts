// safetensors: our writer and reader against each other, against the format's rules, and against
// files made and read by PyTorch (test/fixtures/generate_safetensors.py).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, WeightsError } from '../lib/errors.ts';
import { Tensor, arrayTypeOf, type DType } from '../lib/tensor.ts';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../lib/weights/safetensors.ts';
import { ensureGenerated, systemPython } from './helpers/fixtures.ts';

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const generator = join(fixturesDir, 'generate_safetensors.py');

/** Runs the generator unless its output exists for the script as it is now (sha256 stamp). */
function ensurePythonFixtures(): string {
  return ensureGenerated('generate_safetensors.py', 'safetensors', { outputs: ['torch.safetensors', 'torch.json'] });
}

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const bytesOf = (x: Tensor) => Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);

/** A tensor of `dtype` filled with random bytes (so floats include NaN payloads, subnormals...). */
function randomTensor(dtype: DType, shape: number[]): Tensor {
  const ArrayClass = arrayTypeOf[dtype];
  const numel = shape.reduce((a, b) => a * b, 1);
  const raw = randomBytes(numel * ArrayClass.BYTES_PER_ELEMENT);
  if (dtype === 'bool') for (let i = 0; i < raw.length; i++) raw[i]! &= 1;
  const data = new ArrayClass(numel);
  new Uint8Array(data.buffer).set(raw);
  return new Tensor(data, shape, dtype);
}

/** Every dtype in several shapes, 0-dim and empty included. */
function everyDtype(): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const dtype of Object.keys(arrayTypeOf) as DType[]) {
    out[`${dtype}.matrix`] = randomTensor(dtype, [3, 5]);
    out[`${dtype}.scalar`] = randomTensor(dtype, []);
    out[`${dtype}.empty`] = randomTensor(dtype, [2, 0, 4]);
  }
  return out;
}

function assertSame(t: import('ava').ExecutionContext, actual: Record<string, Tensor>, expected: Record<string, Tensor>) {
  t.deepEqual(Object.keys(actual), Object.keys(expected));
  for (const [name, x] of Object.entries(expected)) {
    const y = actual[name]!;
    t.is(y.dtype, x.dtype, name);
    t.deepEqual(y.shape, x.shape, name);
    t.is(y.data.constructor, x.data.constructor, name);
    t.true(bytesOf(y).equals(bytesOf(x)), `${name}: bytes differ`);
  }
}

/** safetensors bytes from a header (object, or raw text) and a data section. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0)): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

test('round trip of every dtype, 0-dim and empty tensors included, keeps the exact bytes', async (t) => {
  const dir = await tempDir(t);
  const tensors = everyDtype();
  await writeSafetensors(join(dir, 'all.safetensors'), tensors);
  const read = await readSafetensors(join(dir, 'all.safetensors'));
  assertSame(t, read.tensors, tensors);
  t.deepEqual(read.metadata, {});
  // serialize and write produce the same bytes; float16 / bfloat16 come back as Uint16Array, int64 as BigInt64Array
  t.true(Buffer.from(serializeSafetensors(tensors)).equals(await readFile(join(dir, 'all.safetensors'))));
  t.true(read.tensors['float16.matrix']!.data instanceof Uint16Array);
  t.true(read.tensors['bfloat16.matrix']!.data instanceof Uint16Array);
  t.true(read.tensors['int64.scalar']!.data instanceof BigInt64Array);
  t.deepEqual(read.tensors['bool.empty']!.shape, [2, 0, 4]);
});

test('metadata round trip; no __metadata__ entry when there is none', async (t) => {
  const metadata = { format: 'pt', empty: '', unicode: 'é ✓ 😀', json: '{"a": [1, 2]}', __proto__: 'x' };
  const x = { w: new Tensor(new Float32Array([1, 2]), [2]) };
  const back = parseSafetensors(serializeSafetensors(x, JSON.parse(JSON.stringify(metadata))));
  t.deepEqual(Object.entries(back.metadata), Object.entries(JSON.parse(JSON.stringify(metadata))));
  t.is(Object.getPrototypeOf(back.metadata), Object.prototype); // '__proto__' stayed a plain key
  const bare = Buffer.from(serializeSafetensors(x));
  t.false(bare.subarray(8, 8 + Number(bare.readBigUInt64LE(0))).toString().includes('__metadata__'));
  t.deepEqual(parseSafetensors(bare).metadata, {});
});

test('header is JSON padded with spaces to a multiple of 8; tensors in the order given, packed', (t) => {
  const tensors = {
    z: new Tensor(new Uint8Array([1, 2, 3]), [3]),
    a: new Tensor(new Float32Array([1.5]), [1]),
    m: new Tensor(new BigInt64Array([-1n]), []),
  };
  const bytes = Buffer.from(serializeSafetensors(tensors));
  const n = Number(bytes.readBigUInt64LE(0));
  t.is(n % 8, 0);
  const text = bytes.subarray(8, 8 + n).toString();
  t.regex(text, /^\{.*\} *$/);
  const header = JSON.parse(text);
  t.deepEqual(Object.keys(header), ['z', 'a', 'm']);
  t.deepEqual(header.a, { dtype: 'F32', shape: [1], data_offsets: [3, 7] });
  t.deepEqual(header.m, { dtype: 'I64', shape: [], data_offsets: [7, 15] });
  t.is(bytes.length, 8 + n + 15);
});

test('zero-copy: aligned tensors view the file buffer, misaligned ones are copied', async (t) => {
  const tensors = { a: new Tensor(new Float64Array([1, 2]), [2]), b: new Tensor(new Int32Array([3, 4, 5]), [3]) };
  const bytes = Buffer.from(serializeSafetensors(tensors));
  const parsed = parseSafetensors(bytes);
  t.is(parsed.tensors.a!.data.buffer, bytes.buffer);
  t.is(parsed.tensors.b!.data.buffer, bytes.buffer);
  t.is(parsed.tensors.b!.data.byteOffset, bytes.byteOffset + bytes.length - 12);

  // The same bytes one byte into a buffer: every multi-byte tensor is misaligned and copied.
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const copied = parseSafetensors(shifted);
  t.not(copied.tensors.a!.data.buffer, shifted.buffer);
  assertSame(t, copied.tensors, tensors);

  // From a file: both tensors view one buffer, the file's.
  const dir = await tempDir(t);
  await writeSafetensors(join(dir, 'f.safetensors'), tensors);
  const read = await readSafetensors(join(dir, 'f.safetensors'));
  t.is(read.tensors.a!.data.buffer, read.tensors.b!.data.buffer);
  t.true(read.tensors.a!.data.buffer.byteLength >= bytes.length);
});

// Each entry: a name, the bytes, and what the message must say (the source 'bad.safetensors' too).
const f32x2 = (offsets: unknown = [0, 8], shape: unknown = [2]) => ({ dtype: 'F32', shape, data_offsets: offsets });
const eight = new Uint8Array(8);
const headerLength = (value: bigint, rest = 16) => {
  const b = Buffer.alloc(8 + rest);
  b.writeBigUInt64LE(value);
  return b;
};
const invalidCases: Array<[string, Uint8Array, RegExp]> = [
  ['file shorter than 8 bytes', new Uint8Array(5), /the file is 5 bytes, shorter than the 8-byte header length/],
  ['header length larger than the file', headerLength(1000n), /header length 1000 \(bytes 0-7\) exceeds the 16 bytes after it/],
  ['header length 0xFFFFFFFF', headerLength(0xffffffffn), /header length 4294967295 \(bytes 0-7\) exceeds the limit of 100000000 bytes/],
  ['header length 2^63-1', headerLength(2n ** 63n - 1n), /header length 9223372036854775807 .* exceeds the limit of 100000000/],
  ['header not UTF-8', build('{"a": "x"}').fill(0xff, 15, 16), /header \(bytes 8 to 18\) is not valid UTF-8/],
  ['header not JSON', build('{"a": '), /header \(bytes 8 to 14\) is not valid JSON/],
  ['header with a BOM', build('\ufeff{}'), /is not valid JSON/],
  ['header an array', build([]), /header \(bytes 8 to 10\) is not a JSON object but \[\] of type object/],
  ['header null', build('null'), /is not a JSON object but null of type null/],
  ['entry not an object', build({ w: 3 }), /tensor 'w' is not an object but 3 of type number/],
  ['missing dtype', build({ w: { shape: [], data_offsets: [0, 0] } }), /tensor 'w' has no dtype/],
  ['missing shape', build({ w: { dtype: 'F32', data_offsets: [0, 0] } }), /tensor 'w' has no shape/],
  ['missing data_offsets', build({ w: { dtype: 'F32', shape: [] } }), /tensor 'w' has no data_offsets/],
  ['dtype not a string', build({ w: { ...f32x2(), dtype: 1 } }, eight), /tensor 'w' has dtype 1 of type number, not a string/],
  ['dtype U16', build({ w: { ...f32x2(), dtype: 'U16' } }, eight), /tensor 'w' has unsupported dtype 'U16' \(supported: F32, F64/],
  ['dtype U32', build({ w: { ...f32x2(), dtype: 'U32' } }, eight), /tensor 'w' has unsupported dtype 'U32'/],
  ['dtype U64', build({ w: { ...f32x2(), dtype: 'U64' } }, eight), /tensor 'w' has unsupported dtype 'U64'/],
  ['dtype F8_E4M3', build({ w: { ...f32x2(), dtype: 'F8_E4M3' } }, eight), /tensor 'w' has unsupported dtype 'F8_E4M3'/],
  ['dtype constructor', build({ w: { ...f32x2(), dtype: 'constructor' } }, eight), /unsupported dtype 'constructor'/],
  ['negative shape', build({ w: f32x2([0, 8], [-2]) }, eight), /tensor 'w' has shape \[ -2 \] of type object, not an array of non-negative safe integers/],
  ['fractional shape', build({ w: f32x2([0, 8], [1.5]) }, eight), /tensor 'w' has shape \[ 1.5 \]/],
  ['unsafe shape', build({ w: f32x2([0, 8], [2 ** 53]) }, eight), /tensor 'w' has shape \[ 9007199254740992 \]/],
  ['shape not an array', build({ w: f32x2([0, 8], '2') }, eight), /tensor 'w' has shape '2' of type string/],
  ['negative offset', build({ w: f32x2([-8, 0]) }, eight), /tensor 'w' has data_offsets \[ -8, 0 \] of type object, not \[begin, end\]/],
  ['begin > end', build({ w: f32x2([8, 0]) }, eight), /tensor 'w' has data_offsets \[ 8, 0 \] .*begin <= end/],
  ['three offsets', build({ w: f32x2([0, 4, 8]) }, eight), /tensor 'w' has data_offsets \[ 0, 4, 8 \]/],
  ['string offsets', build({ w: f32x2(['0', '8']) }, eight), /tensor 'w' has data_offsets \[ '0', '8' \]/],
  ['byte length != numel * size', build({ w: f32x2([0, 8], [3]) }, eight), /tensor 'w' data_offsets \[0, 8\] hold 8 bytes but shape \[3\] of F32 needs 12/],
  ['gigantic shape', build({ w: f32x2([0, 8], [2 ** 40, 2 ** 40, 2 ** 40]) }, eight), /tensor 'w' data_offsets \[0, 8\] hold 8 bytes but shape \[1099511627776, 1099511627776, 1099511627776\] of F32 needs about 5\.3\d*e\+36/],
  ['offsets past the data', build({ w: f32x2([0, 4096], [1024]) }, eight), /tensor 'w' data_offsets \[0, 4096\] end past the 8 data bytes in the file/],
  ['overlap', build({ a: f32x2([0, 8]), b: f32x2([4, 12]) }, new Uint8Array(12)), /tensor 'b' data_offsets \[4, 12\] overlap tensor 'a' data_offsets \[0, 8\] \(data bytes 4 to 8\)/],
  ['gap between tensors', build({ a: f32x2([0, 8]), b: f32x2([12, 20]) }, new Uint8Array(20)), /data bytes 8 to 12 \(file offset \d+\) after tensor 'a' belong to no tensor/],
  ['gap at the start', build({ a: f32x2([4, 12]) }, new Uint8Array(12)), /data bytes 0 to 4 \(file offset \d+\) at the start of the data belong to no tensor/],
  ['bytes after the last tensor', build({ a: f32x2() }, new Uint8Array(12)), /data bytes 8 to 12 \(file offset \d+\) at the end belong to no tensor/],
  ['metadata value not a string', build({ __metadata__: { epoch: 3 } }), /__metadata__ value for 'epoch' is not a string but 3 of type number/],
  ['metadata not an object', build({ __metadata__: 'x' }), /__metadata__ is not an object but 'x' of type string/],
];

for (const [name, bytes, message] of invalidCases) {
  test(`rejects: ${name}`, (t) => {
    const error = t.throws(() => parseSafetensors(bytes, 'bad.safetensors'), { instanceOf: WeightsError });
    t.is(error?.code, 'ERR_RESNET_WEIGHTS');
    t.true(error?.message.startsWith('Invalid safetensors file bad.safetensors: '), error?.message);
    t.regex(error?.message ?? '', message);
  });
}

test('a missing file is a WeightsError naming it', async (t) => {
  const path = join(tmpdir(), 'no-such-dir-xyz', 'w.safetensors');
  await t.throwsAsync(readSafetensors(path), { instanceOf: WeightsError, message: new RegExp(`Cannot read safetensors file ${path}: ENOENT`) });
});

test('a failed write leaves the destination as it was and no temporary file', async (t) => {
  const dir = await tempDir(t);
  const x = { w: new Tensor(new Float32Array([1]), [1]) };
  // The rename fails (the destination is a non-empty folder) after the temporary file was written.
  await mkdir(join(dir, 'taken.safetensors'));
  await writeFile(join(dir, 'taken.safetensors', 'keep'), 'k');
  await t.throwsAsync(writeSafetensors(join(dir, 'taken.safetensors'), x), {
    instanceOf: WeightsError,
    message: /Cannot write safetensors file .*taken\.safetensors: /,
  });
  t.deepEqual(await readdir(join(dir, 'taken.safetensors')), ['keep']);
  // Invalid input fails before any file is touched; the old file stays.
  await writeFile(join(dir, 'old.safetensors'), 'old');
  await t.throwsAsync(writeSafetensors(join(dir, 'old.safetensors'), x, { epoch: 3 } as never), {
    instanceOf: InvalidArgumentError,
    message: /Expected a string for metadata 'epoch' but received 3 of type number/,
  });
  await t.throwsAsync(writeSafetensors(join(dir, 'old.safetensors'), { __metadata__: x.w }), { instanceOf: InvalidArgumentError });
  t.is(await readFile(join(dir, 'old.safetensors'), 'utf8'), 'old');
  t.deepEqual((await readdir(dir)).sort(), ['old.safetensors', 'taken.safetensors']);
  // A folder that does not exist.
  await t.throwsAsync(writeSafetensors(join(dir, 'nope', 'w.safetensors'), x), { instanceOf: WeightsError, message: /ENOENT/ });
  // And a successful write replaces the old file.
  await writeSafetensors(join(dir, 'old.safetensors'), x);
  t.deepEqual([...(await readSafetensors(join(dir, 'old.safetensors'))).tensors.w!.data], [1]);
});

/** float16 / bfloat16 bits to the number they stand for. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
const bfloat16ToNumber = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;

function asNumber(value: unknown): number | bigint | boolean {
  if (value === 'nan') return NaN;
  if (value === 'inf') return Infinity;
  if (value === '-inf') return -Infinity;
  return typeof value === 'string' ? BigInt(value) : (value as number | boolean);
}

test('reads a file that PyTorch wrote, with the values PyTorch has', async (t) => {
  const dir = ensurePythonFixtures();
  const expected = JSON.parse(await readFile(join(dir, 'torch.json'), 'utf8')) as {
    metadata: Record<string, string>;
    tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }>;
  };
  const { tensors, metadata } = await readSafetensors(join(dir, 'torch.safetensors'));
  t.deepEqual(metadata, expected.metadata);
  t.deepEqual(Object.keys(tensors), Object.keys(expected.tensors));
  const dtypeOf: Record<string, DType> = { F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool' };
  for (const [name, want] of Object.entries(expected.tensors)) {
    const got = tensors[name]!;
    t.is(got.dtype, dtypeOf[want.dtype]!, name);
    t.deepEqual(got.shape, want.shape, name);
    const values = Array.from(got.data as ArrayLike<number | bigint>, (v) => {
      if (got.dtype === 'float16') return halfToNumber(v as number);
      if (got.dtype === 'bfloat16') return bfloat16ToNumber(v as number);
      if (got.dtype === 'bool') return v === 1;
      if (got.dtype.startsWith('int') || got.dtype === 'uint8') return BigInt(v);
      return v;
    });
    // Object.is: NaN equals NaN and -0 differs from 0, so every value is compared exactly.
    const wanted = want.values.map(asNumber);
    t.is(values.length, wanted.length, name);
    t.true(values.every((v, i) => Object.is(v, wanted[i])), `${name}: ${values} != ${wanted}`);
  }
});

test('PyTorch reads a file we wrote back to its own tensors, bit for bit', async (t) => {
  const source = ensurePythonFixtures();
  const dir = await tempDir(t);
  const { tensors, metadata } = await readSafetensors(join(source, 'torch.safetensors'));
  const ours = join(dir, 'ours.safetensors');
  await writeSafetensors(ours, tensors, metadata);
  const check = spawnSync(systemPython, [generator, '--check', ours], { encoding: 'utf8' });
  t.is(check.status, 0, check.stderr);
  t.like(JSON.parse(check.stdout), { ok: true, tensors: Object.keys(tensors).length });

  // The check is not vacuous: one changed bit is reported.
  const changed = { ...tensors, f32: new Tensor(Float32Array.from(tensors.f32!.data as Float32Array), tensors.f32!.shape) };
  const data = changed.f32.data as Float32Array;
  data[0] = data[0]! + 1;
  await writeSafetensors(ours, changed, metadata);
  const failed = spawnSync(systemPython, [generator, '--check', ours], { encoding: 'utf8' });
  t.not(failed.status, 0);
  t.regex(failed.stderr, /f32: values differ/);
});
