// Parity fixtures: generated on demand by test/fixtures/generate.py with the system Python
// (torch + torchvision), cached in test/fixtures/cache, regenerated when generate.py changes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, type DType } from '../../lib/tensor.ts'; // not lib/index.ts: reading a fixture needs no addon

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const cacheDir = join(fixturesDir, 'cache');
const generator = join(fixturesDir, 'generate.py');
export const systemPython = process.env.RESNET_FIXTURE_PYTHON ?? '/usr/bin/python3';

export interface GenerateOptions {
  /** Files (relative to the folder) that must exist, or the generator runs again although the stamp is current. */
  outputs?: string[];
  /**
   * Also hash the folder's absolute path into the stamp, after the script's bytes (the same stamp
   * generate_weights.py writes itself: its malicious fixtures embed a marker path inside the folder).
   */
  stampPath?: boolean;
}

/**
 * PyTorch's numbers depend on the kernels oneDNN picks, which ONEDNN_MAX_CPU_ISA caps: fixtures
 * made under one cap are regenerated under another (a suite run with ONEDNN_MAX_CPU_ISA=AVX2
 * compared AVX2 kernels with AVX-512 references and failed by 1e-3 on the deepest nets).
 */
function isaStamp(): string {
  return `ONEDNN_MAX_CPU_ISA=${process.env.ONEDNN_MAX_CPU_ISA ?? ''}`;
}

/**
 * Runs a fixture generator (test/fixtures/<script>) with the system Python when its output folder
 * lacks the stamp of the script's current contents (or one of `outputs`); returns the folder.
 */
export function ensureGenerated(script: string, folder: string, options: GenerateOptions = {}): string {
  const path = join(fixturesDir, script);
  const out = join(cacheDir, folder);
  const hash = createHash('sha256').update(readFileSync(path)).update(isaStamp());
  if (options.stampPath) hash.update(out);
  const stamp = hash.digest('hex');
  const stampFile = join(out, '.stamp');
  const fresh = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
  if (!fresh || !(options.outputs ?? []).every((file) => existsSync(join(out, file)))) {
    mkdirSync(out, { recursive: true });
    execFileSync(systemPython, [path, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(stampFile, stamp);
  }
  return out;
}

/** The case names a fixture generator prints with --list, one a line. */
export function fixtureCases(script: string): string[] {
  return execFileSync(systemPython, [join(fixturesDir, script), '--list'], { encoding: 'utf8' }).trim().split('\n');
}

/** Makes sure every case exists for the current generate.py; returns the case names. */
export function ensureFixtures(): string[] {
  const stamp = createHash('sha256').update(readFileSync(generator)).update(isaStamp()).digest('hex');
  const stampFile = join(cacheDir, '.stamp');
  const cases = execFileSync(systemPython, [generator, '--list'], { encoding: 'utf8' }).trim().split('\n');
  const fresh = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp;
  if (!fresh || !cases.every((name) => existsSync(join(cacheDir, `${name}.safetensors`)))) {
    mkdirSync(cacheDir, { recursive: true });
    execFileSync(systemPython, [generator, '--out', cacheDir], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(stampFile, stamp);
  }
  return cases;
}

/** PyTorch's load_state_dict error texts (messages.json), generated with the fixtures. */
export function pytorchMessages(): { missing_and_unexpected: string; size_mismatch: string } {
  ensureFixtures();
  return JSON.parse(readFileSync(join(cacheDir, 'messages.json'), 'utf8'));
}

const dtypeOf: Record<string, DType> = { F32: 'float32', I64: 'int64', F64: 'float64', I32: 'int32' };

export interface Fixture {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor>;
}

/** Reads a fixture file (a minimal safetensors reader; tensor data stays in the file's buffer when aligned). */
export async function readFixture(name: string): Promise<Fixture> {
  const bytes = await readFile(join(cacheDir, `${name}.safetensors`));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  const base = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const entry = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dtype = dtypeOf[entry.dtype];
    if (!dtype) throw new Error(`fixture ${name}: unexpected dtype ${entry.dtype}`);
    const start = bytes.byteOffset + base + entry.data_offsets[0];
    const length = entry.data_offsets[1] - entry.data_offsets[0];
    let buffer = bytes.buffer;
    let offset = start;
    const ArrayType = { float32: Float32Array, int64: BigInt64Array, float64: Float64Array, int32: Int32Array }[
      dtype as 'float32'
    ];
    if (offset % ArrayType.BYTES_PER_ELEMENT !== 0) {
      buffer = bytes.buffer.slice(start, start + length);
      offset = 0;
    }
    const data = new ArrayType(buffer, offset, length / ArrayType.BYTES_PER_ELEMENT);
    tensors.set(key, new Tensor(data, entry.shape, dtype));
  }
  return { metadata, tensors };
}

/** Largest absolute difference, and the same relative to max(1, max |expected|). */
export function compare(actual: Tensor, expected: Tensor): { maxAbs: number; maxRel: number; scale: number } {
  const a = actual.data as Float32Array;
  const e = expected.data as Float32Array;
  if (a.length !== e.length) throw new Error(`length ${a.length} != ${e.length}`);
  let maxAbs = 0;
  let maxExpected = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - e[i]!));
    maxExpected = Math.max(maxExpected, Math.abs(e[i]!));
  }
  const scale = Math.max(1, maxExpected);
  return { maxAbs, maxRel: maxAbs / scale, scale };
}

/** Tensors under a prefix ("state/", "train/state/"), with the prefix removed, in file order. */
export function withPrefix(fixture: Fixture, prefix: string): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [key, tensor] of fixture.tensors) {
    if (key.startsWith(prefix)) out[key.slice(prefix.length)] = tensor;
  }
  return out;
}
