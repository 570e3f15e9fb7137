// Fuzzing parseSafetensors: thousands of seeded mutations of small valid files. Whatever the bytes
// claim, the parser must accept them or throw a ResNetError, quickly and without a large allocation.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { ResNetError } from '../lib/errors.ts';
import { Tensor } from '../lib/tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../lib/weights/safetensors.ts';

const CASES = 5000;
const RSS_HEADROOM = 256 * 2 ** 20; // far below what a claimed gigantic shape or header length would take

/** mulberry32: small, seeded, good enough to spread mutations. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const bases = [
  serializeSafetensors(
    {
      'bytes': new Tensor(new Uint8Array([1, 2, 3]), [3]), // misaligns everything after it
      'w': new Tensor(new Float32Array([1, -2, 3.5, 0, 5, 6]), [2, 3]),
      'step': new Tensor(new BigInt64Array([7n]), []),
      'empty': new Tensor(new Uint16Array(0), [2, 0], 'bfloat16'),
      'mask': new Tensor(new Uint8Array([1, 0, 1, 1]), [4], 'bool'),
    },
    { format: 'pt', note: 'fuzz' },
  ),
  serializeSafetensors({ 'a.weight': new Tensor(new Float64Array([1, 2]), [2]), 'a.bias': new Tensor(new Int16Array([3]), [1]) }),
];

const headerOf = (bytes: Uint8Array) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, any> };
};

/** A file from header text and data, with a correct length prefix (so the JSON checks are reached). */
function assemble(text: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

// Values a hostile header might hold; RAW: tokens are spliced in as JSON text JSON.stringify cannot write.
const hostileNumbers = [0, 1, 3, 8, -1, -8, 0.5, 1.5, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64, 1e308, -0];
const hostileValues: unknown[] = [...hostileNumbers, null, true, '0', '8', [], {}, 'RAW:18446744073709551615',
  'RAW:9223372036854775807', 'RAW:1e400', 'RAW:-1e400', 'RAW:99999999999999999999999999'];
const hostileShapes: unknown[] = [[], [0], [-1], [1.5], ['3'], null, 5, [2 ** 53 - 1, 2 ** 53 - 1], [1e9, 1e9, 1e9],
  [2 ** 32, 2 ** 32], Array(1000).fill(2 ** 20), Array(64).fill(2), [2 ** 62], [0, 2 ** 53], [3, 0, 2 ** 60]];
const dtypeNames = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'U16', 'U32', 'U64',
  'F8_E4M3', 'F8_E5M2', 'f32', '', 'constructor', '__proto__', 'toString', 0, null];

function toText(header: unknown): string {
  return JSON.stringify(header).replace(/"RAW:([^"]*)"/g, '$1');
}

/** Rewrites the JSON header: offsets, shapes, dtypes, entries and metadata. */
function mutateJson(bytes: Uint8Array, rng: Rng): Uint8Array {
  const { n, json } = headerOf(bytes);
  const data = bytes.subarray(8 + n);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const name = rng.pick(names);
  const entry = json[name];
  switch (rng.int(12)) {
    case 0: entry.data_offsets = [rng.pick(hostileValues), entry.data_offsets[1]]; break;
    case 1: entry.data_offsets = [entry.data_offsets[0], rng.pick(hostileValues)]; break;
    case 2: entry.data_offsets = rng.pick([[...entry.data_offsets].reverse(), json[rng.pick(names)].data_offsets,
      [0, data.length], [entry.data_offsets[0] - 1, entry.data_offsets[1]], [0], [0, 1, 2], 'x']); break;
    case 3: entry.shape = rng.pick(hostileShapes); break;
    case 4: entry.shape = entry.shape.map((d: number) => (rng.next() < 0.5 ? rng.pick(hostileNumbers) : d)); break;
    case 5: entry.dtype = rng.pick(dtypeNames); break;
    case 6: delete entry[rng.pick(['dtype', 'shape', 'data_offsets'])]; break;
    case 7: json[name] = rng.pick([null, 1, 'x', [], [entry]]); break;
    case 8: json.__metadata__ = rng.pick([null, 'x', [], { k: 1 }, { k: null }, { k: {} }, { __proto__: 'x' }, { k: 'v' }]); break;
    // Same size, other place: these pass the per-tensor checks and reach the overlap / gap checks.
    case 9: json[name] = { ...json[rng.pick(names)] }; break;
    case 10: { const k = rng.pick([-8, -4, -1, 1, 2, 4, 8]); entry.data_offsets = entry.data_offsets.map((o: number) => o + k); break; }
    default: json[rng.pick(['__proto__', 'constructor', 'extra', name + '2'])] = {
      dtype: rng.pick(dtypeNames), shape: rng.pick(hostileShapes), data_offsets: [rng.pick(hostileValues), rng.pick(hostileValues)],
    };
  }
  const text = rng.next() < 0.1 ? JSON.stringify(rng.pick([[], 3, 'x', null, [json]])) : toText(json);
  return assemble(text + ' '.repeat(rng.int(9)), data);
}

const mutators: Record<string, (bytes: Uint8Array, rng: Rng) => Uint8Array> = {
  truncate: (b, rng) => b.slice(0, rng.int(b.length)),
  flipBytes: (b, rng) => {
    const out = b.slice();
    for (let i = 1 + rng.int(8); i > 0; i--) {
      const at = rng.int(out.length);
      out[at] = out[at]! ^ (1 + rng.int(255));
    }
    return out;
  },
  headerLength: (b, rng) => {
    const out = b.slice();
    const n = BigInt(headerOf(b).n);
    const value = rng.pick([0n, 1n, 7n, 8n, n - 1n, n + 1n, n + 8n, BigInt(b.length), 0xffffffffn, 2n ** 63n - 1n,
      2n ** 64n - 1n, 2n ** 53n + 1n, 100_000_000n, 100_000_001n, BigInt(rng.int(2 ** 32)) * BigInt(rng.int(2 ** 32))]);
    new DataView(out.buffer).setBigUint64(0, value, true);
    return out;
  },
  json: mutateJson,
  dataLength: (b, rng) => {
    const grow = rng.next() < 0.5;
    const out = new Uint8Array(grow ? b.length + 1 + rng.int(16) : Math.max(8, b.length - 1 - rng.int(16)));
    out.set(grow ? b : b.subarray(0, out.length));
    return out;
  },
  badUtf8: (b, rng) => {
    const { n } = headerOf(b);
    const out = b.slice();
    out.set(rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xef, 0xbb, 0xbf], [0x00]]), 8 + rng.int(n - 3));
    return out;
  },
};

test(`parseSafetensors survives ${CASES} mutated files: accepted or a ResNetError, fast, no large allocation`, (t) => {
  const rng = prng(0x5afe7e45);
  const names = Object.keys(mutators);
  const counts: Record<string, { accepted: number; rejected: number }> = {};
  const reasons = new Map<string, number>();
  const failures: string[] = [];
  const baseline = process.memoryUsage().rss;
  let maxRss = baseline;

  for (let i = 0; i < CASES; i++) {
    // One to three mutations in a row; the JSON rewrite needs a header that still parses, else flip bytes.
    let bytes: Uint8Array = rng.pick(bases);
    const applied: string[] = [];
    for (let k = 1 + (rng.next() < 0.3 ? rng.int(3) : 0); k > 0; k--) {
      let name = rng.pick(names);
      try {
        bytes = mutators[name]!(bytes, rng);
      } catch {
        name = 'flipBytes';
        bytes = bytes.length > 0 ? mutators.flipBytes!(bytes, rng) : bytes;
      }
      applied.push(name);
    }
    const kind = applied.join('+');
    counts[kind] ??= { accepted: 0, rejected: 0 };

    try {
      const { tensors } = parseSafetensors(bytes, 'fuzz.safetensors');
      counts[kind].accepted++;
      // An accepted file describes only bytes it has, and what was read writes back and reads again.
      const total = Object.values(tensors).reduce((s, x) => s + x.data.byteLength, 0);
      if (total > bytes.length) failures.push(`case ${i} (${kind}): tensors hold ${total} bytes of a ${bytes.length}-byte file`);
      parseSafetensors(serializeSafetensors(tensors));
    } catch (error) {
      counts[kind].rejected++;
      if (!(error instanceof ResNetError)) failures.push(`case ${i} (${kind}): ${String(error)}`);
      else {
        const reason = error.message.replace(/^Invalid safetensors file fuzz\.safetensors: /, '').replace(/'[^']*'|\[[^\]]*\]|(?<![\w-])-?\d[\d.e+]*|\{.*\}/g, '_').slice(0, 60);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }
    if (i % 50 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  maxRss = Math.max(maxRss, process.memoryUsage().rss);

  const totals = Object.values(counts).reduce((s, c) => ({ accepted: s.accepted + c.accepted, rejected: s.rejected + c.rejected }), { accepted: 0, rejected: 0 });
  t.log(`${CASES} cases: ${totals.accepted} accepted, ${totals.rejected} rejected; rss +${((maxRss - baseline) / 2 ** 20).toFixed(1)} MiB`);
  for (const [kind, c] of Object.entries(counts).filter(([k]) => !k.includes('+'))) t.log(`  ${kind}: ${c.accepted} accepted, ${c.rejected} rejected`);
  t.log(`  combined mutations: ${Object.entries(counts).filter(([k]) => k.includes('+')).reduce((s, [, c]) => s + c.accepted + c.rejected, 0)} cases`);
  t.log(`  ${reasons.size} distinct rejection messages; most common:`);
  for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12)) t.log(`    ${n} × ${reason}`);

  t.deepEqual(failures.slice(0, 20), []);
  t.true(maxRss - baseline < RSS_HEADROOM, `rss grew by ${maxRss - baseline} bytes`);
  t.true(totals.accepted > 0 && totals.rejected > totals.accepted); // both paths were exercised
});
