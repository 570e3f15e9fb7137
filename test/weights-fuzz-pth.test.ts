// Fuzzing readPth: thousands of seeded mutations of small valid .pth files, at two levels. Raw
// file mutations (truncation, flipped bytes, zip length fields set to huge values, duplicated or
// deleted ranges) mostly exercise the zip reader; mutations of data.pkl re-zipped with correct
// CRCs reach the unpickler and the tensor checks. Every case must either succeed or throw a
// ResNetError, quickly, without a large allocation.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResNetError } from '../lib/errors.ts';
import { Tensor } from '../lib/tensor.ts';
import { readPth, writePth } from '../lib/weights/pth.ts';
import { openSource, ZipReader } from '../lib/weights/zip.ts';
import { zipToBytes, type ZipWriteEntry } from '../lib/weights/zip-writer.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

const weightsDir = ensureGenerated('generate_weights.py', 'weights', { outputs: ['small.pth'], stampPath: true });

const CASES_PER_LEVEL = 5000;
const RSS_GROWTH_LIMIT = 512 * 2 ** 20;

/** mulberry32: small, seeded, good enough to spread mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const random = prng(0x5eed);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

interface Field {
  at: number;
  width: 2 | 4 | 8;
}

/** Length, offset and count fields of every zip record found by its signature. */
function zipFields(bytes: Uint8Array): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  const add = (base: number, width: 2 | 4 | 8, ...offsets: number[]) => offsets.forEach((o) => fields.push({ at: base + o, width }));
  for (let p = 0; p + 4 <= bytes.length; p++) {
    const signature = view.getUint32(p, true);
    if (signature === 0x04034b50) {
      add(p, 4, 14, 18, 22);
      add(p, 2, 26, 28);
    } else if (signature === 0x02014b50) {
      add(p, 4, 20, 24, 42);
      add(p, 2, 28, 30, 32);
      const extra = p + 46 + view.getUint16(p + 28, true);
      if (view.getUint16(p + 30, true) >= 12) add(extra, 8, 4, 12, 20); // zip64 values, when present
    } else if (signature === 0x06054b50) {
      add(p, 2, 8, 10, 20);
      add(p, 4, 12, 16);
    } else if (signature === 0x06064b50) {
      add(p, 8, 4, 24, 32, 40, 48);
    } else if (signature === 0x07064b50) {
      add(p, 8, 8);
    }
  }
  return fields.filter((f) => f.at + f.width <= bytes.length);
}

const hugeValues: Record<2 | 4 | 8, bigint[]> = {
  2: [0xffffn, 0xfffen, 0x8000n, 0n],
  4: [0xffffffffn, 0xfffffffen, 0x7fffffffn, 0x80000000n, 0n, 1n],
  8: [2n ** 62n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 53n + 1n, 0xffffffffn, 2n ** 63n],
};

function overwrite(bytes: Uint8Array, at: number, width: 2 | 4 | 8, value: bigint): void {
  for (let i = 0; i < width && at + i < bytes.length; i++) bytes[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

/** One structural mutation of `input` (a copy); returns its name for the report. */
function mutate(input: Uint8Array, fields: readonly Field[]): [string, Uint8Array] {
  const bytes = new Uint8Array(input);
  const n = bytes.length;
  switch (int(6)) {
    case 0:
      return ['truncate', bytes.subarray(0, int(n))];
    case 1: {
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) {
        const at = int(n);
        bytes[at] = bytes[at]! ^ (1 + int(255));
      }
      return ['flip', bytes];
    }
    case 2: {
      const width = pick([2, 4, 8] as const);
      const field = fields.length > 0 && random() < 0.8 ? pick(fields) : { at: int(n), width };
      overwrite(bytes, field.at, field.width, pick(hugeValues[field.width]));
      return ['huge', bytes];
    }
    case 3: {
      const start = int(n);
      const copy = bytes.slice(start, start + 1 + int(64));
      const at = int(n);
      return ['duplicate', Buffer.concat([bytes.subarray(0, at), copy, bytes.subarray(at)])];
    }
    case 4: {
      const start = int(n);
      return ['delete', Buffer.concat([bytes.subarray(0, start), bytes.subarray(start + 1 + int(64))])];
    }
    default: {
      const at = int(n);
      for (let i = 0; i < 1 + int(16); i++) bytes[at + i] = int(256);
      return ['scribble', bytes.subarray(0, n)];
    }
  }
}

/** Positions right after the opcodes that carry a length, an index or an integer. */
function pickleArgumentFields(pickle: Uint8Array): Field[] {
  const widths: Record<number, 2 | 4 | 8> = { 0x58: 4, 0x71: 4, 0x68: 4, 0x72: 4, 0x6a: 4, 0x4a: 4, 0x4b: 2, 0x4d: 2, 0x8a: 2, 0x42: 4, 0x8d: 8, 0x95: 8 };
  const fields: Field[] = [];
  pickle.forEach((byte, at) => {
    const width = widths[byte];
    if (width !== undefined) fields.push({ at: at + 1, width });
  });
  return fields;
}

const opcodes = [0x28, 0x29, 0x2e, 0x4e, 0x51, 0x52, 0x5d, 0x61, 0x62, 0x65, 0x73, 0x74, 0x75, 0x7d, 0x85, 0x86, 0x87, 0x88, 0x93, 0x94];

/** Mutates data.pkl (fields first, then structure) and re-zips it with correct CRCs. */
function mutatePickle(entries: readonly ZipWriteEntry[], pickleName: string): [string, Uint8Array] {
  const original = entries.find((e) => e.name === pickleName)!.data;
  let name: string;
  let pickle: Uint8Array;
  if (random() < 0.3) {
    const fields = pickleArgumentFields(original);
    pickle = new Uint8Array(original);
    const field = pick(fields);
    overwrite(pickle, field.at, field.width, pick(hugeValues[field.width]));
    name = 'pickle-huge';
  } else if (random() < 0.3) {
    const at = int(original.length);
    const inserted = Uint8Array.from({ length: 1 + int(3) }, () => pick(opcodes));
    pickle = Buffer.concat([original.subarray(0, at), inserted, original.subarray(at)]);
    name = 'pickle-opcodes';
  } else {
    [name, pickle] = mutate(original, []);
    name = `pickle-${name}`;
  }
  return [name, zipToBytes(entries.map((e) => (e.name === pickleName ? { name: e.name, data: pickle } : e)))];
}

async function entriesOf(bytes: Uint8Array): Promise<ZipWriteEntry[]> {
  const source = await openSource(bytes);
  try {
    const zip = await ZipReader.open(source);
    const entries: ZipWriteEntry[] = [];
    for (const name of zip.entries.keys()) entries.push({ name, data: await zip.read(name) });
    return entries;
  } finally {
    await source.close();
  }
}

test('mutated .pth files are read or refused with a ResNetError, each quickly and without large allocations', async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'weights-fuzz-'));
  const ours = join(scratch, 'ours.pth');
  const base = new Float32Array([1, 2, 3, 4, 5, 6]);
  await writePth(ours, {
    weight: new Tensor(base, [2, 3]),
    steps: new Tensor(new BigInt64Array([1n, 2n]), [2]),
    half: new Tensor(new Uint16Array([0x3c00]), [], 'float16'),
    mask: new Tensor(new Uint8Array([1, 0, 1]), [3], 'bool'),
  });
  const seeds: Uint8Array[] = [readFileSync(join(weightsDir, 'small.pth')), readFileSync(ours)];
  rmSync(scratch, { recursive: true, force: true });
  const seedEntries = await Promise.all(seeds.map(entriesOf));
  // A third seed with zip64 records everywhere, so their fields are mutated too.
  seeds.push(zipToBytes(seedEntries[1]!, { forceZip64: true }));
  seedEntries.push(seedEntries[1]!);
  const seedFields = seeds.map(zipFields);
  for (const seed of seeds) t.true(Object.keys(await readPth(seed)).length > 0, 'every seed is valid');

  const tally = new Map<string, { accepted: number; rejected: number }>();
  const errorKinds = new Map<string, number>();
  const unexpected: string[] = [];
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const total = 2 * CASES_PER_LEVEL;
  for (let index = 0; index < total; index++) {
    const which = index % seeds.length;
    const [kind, bytes] =
      index < CASES_PER_LEVEL
        ? mutate(seeds[which]!, seedFields[which]!)
        : mutatePickle(seedEntries[which]!, seedEntries[which]!.find((e) => e.name.endsWith('/data.pkl'))!.name);
    const count = tally.get(kind) ?? { accepted: 0, rejected: 0 };
    tally.set(kind, count);
    try {
      const sd = await readPth(bytes);
      if (!Object.values(sd).every((v) => v instanceof Tensor)) unexpected.push(`case ${index} (${kind}): a value that is not a Tensor`);
      count.accepted++;
    } catch (error) {
      if (error instanceof ResNetError) {
        count.rejected++;
        errorKinds.set(error.name, (errorKinds.get(error.name) ?? 0) + 1);
      } else {
        unexpected.push(`case ${index} (${kind}): ${(error as Error)?.stack ?? String(error)}`);
      }
    }
    if (index % 50 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }

  const accepted = [...tally.values()].reduce((n, c) => n + c.accepted, 0);
  t.log(`${total} cases: ${accepted} accepted, ${total - accepted} rejected with a ResNetError`);
  t.log(`by mutation: ${[...tally].map(([k, c]) => `${k} ${c.accepted}/${c.rejected}`).join(', ')} (accepted/rejected)`);
  t.log(`rejections: ${[...errorKinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  t.log(`rss growth ${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
  t.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} cases threw something other than a ResNetError`);
  t.true(rssPeak - rssBefore < RSS_GROWTH_LIMIT, `rss grew by ${rssPeak - rssBefore} bytes`);
  t.true(accepted > 0 && accepted < total, 'some mutations are harmless, most are not');
});
