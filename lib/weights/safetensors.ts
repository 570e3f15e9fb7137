// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of UTF-8 JSON describing each tensor, then the raw little-endian data.
// The reader treats the file as untrusted: every size it claims is checked against the bytes that
// are actually there before anything is allocated or viewed, and every failure is a WeightsError
// that names the file, the tensor and the offsets involved. TypedArrays use the host's byte order:
// little-endian on every platform Node.js runs on in practice, as the format is.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError, WeightsError } from '../errors.js';
import { Tensor, arrayTypeOf, formatShape, type DType, type TensorData } from '../tensor.js';
import { describe, invalid, setOwn } from '../validate.js';

export interface Safetensors {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** The reference implementation's limit: a larger header is refused before it is decoded. */
export const MAX_HEADER_LENGTH = 100_000_000;

// A Map, not an object literal, so that names such as 'constructor' never resolve to a prototype member.
const fromFileDType = new Map<string, DType>([
  ['F32', 'float32'], ['F64', 'float64'], ['F16', 'float16'], ['BF16', 'bfloat16'], ['I64', 'int64'],
  ['I32', 'int32'], ['I16', 'int16'], ['I8', 'int8'], ['U8', 'uint8'], ['BOOL', 'bool'],
]);
const toFileDType = new Map([...fromFileDType].map(([file, ours]) => [ours, file]));

const elementSize = (dtype: DType): number => arrayTypeOf[dtype].BYTES_PER_ELEMENT;

/** A shape for a message, cut short when a hostile header makes it enormous. */
function showShape(shape: readonly unknown[]): string {
  return shape.length <= 16 ? formatShape(shape as number[]) : `[${shape.slice(0, 16).join(', ')}, ... (${shape.length} dims)]`;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

/** Parses safetensors bytes. Tensors view `bytes` where their offset suits the element size. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): Safetensors {
  const fail = (message: string) => new WeightsError(`Invalid safetensors file ${source}: ${message}`);
  if (!(bytes instanceof Uint8Array)) throw invalid('a Uint8Array', 'safetensors bytes', bytes);
  if (bytes.length < 8) throw fail(`the file is ${bytes.length} bytes, shorter than the 8-byte header length`);

  // The length is a u64: compared as a BigInt so that 2^63-1 is refused, not rounded.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const claimed = view.getBigUint64(0, true);
  if (claimed > BigInt(MAX_HEADER_LENGTH)) {
    throw fail(`header length ${claimed} (bytes 0-7) exceeds the limit of ${MAX_HEADER_LENGTH} bytes`);
  }
  if (claimed > BigInt(bytes.length - 8)) {
    throw fail(`header length ${claimed} (bytes 0-7) exceeds the ${bytes.length - 8} bytes after it`);
  }
  const headerLength = Number(claimed);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const where = `header (bytes 8 to ${dataStart})`;

  // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM is kept, so JSON.parse refuses it as the reference does.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw fail(`${where} is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw fail(`${where} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw fail(`${where} is not a JSON object but ${describe(header)}`);
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (raw === null) continue; // the reference reads it as an Option
      if (typeof raw !== 'object' || Array.isArray(raw)) throw fail(`__metadata__ is not an object but ${describe(raw)}`);
      for (const [key, value] of Object.entries(raw as object)) {
        if (typeof value !== 'string') throw fail(`__metadata__ value for '${key}' is not a string but ${describe(value)}`);
        setOwn(metadata, key, value);
      }
      continue;
    }
    entries.push(checkEntry(name, raw, dataLength, fail));
  }

  // The data must be tiled exactly: sorted by position, each tensor starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | undefined;
  for (const entry of sorted) {
    if (entry.begin < covered) {
      throw fail(
        `tensor '${entry.name}' data_offsets [${entry.begin}, ${entry.end}] overlap tensor '${previous!.name}' ` +
          `data_offsets [${previous!.begin}, ${previous!.end}] (data bytes ${entry.begin} to ${covered})`,
      );
    }
    if (entry.begin > covered) {
      const after = previous ? `after tensor '${previous.name}'` : 'at the start of the data';
      throw fail(`data bytes ${covered} to ${entry.begin} (file offset ${dataStart + covered}) ${after} belong to no tensor`);
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw fail(`data bytes ${covered} to ${dataLength} (file offset ${dataStart + covered}) at the end belong to no tensor`);
  }

  const tensors: Record<string, Tensor> = {};
  for (const entry of entries) {
    const ArrayClass = arrayTypeOf[entry.dtype];
    const at = bytes.byteOffset + dataStart + entry.begin;
    let data: TensorData;
    if (at % ArrayClass.BYTES_PER_ELEMENT === 0) {
      // zero-copy view into the file (a SharedArrayBuffer works the same; the cast only picks the overload)
      data = new ArrayClass(bytes.buffer as ArrayBuffer, at, entry.numel);
    } else {
      // A TypedArray cannot start at a misaligned offset: copy (the size is already checked against the file).
      data = new ArrayClass(entry.numel);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + entry.begin, dataStart + entry.end));
    }
    setOwn(tensors, entry.name, new Tensor(data, entry.shape, entry.dtype));
  }
  return { tensors, metadata };
}

/** Checks one header entry's fields and its sizes against the `dataLength` bytes that exist. */
function checkEntry(name: string, raw: unknown, dataLength: number, fail: (m: string) => WeightsError): Entry {
  const tensor = `tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(`${tensor} is not an object but ${describe(raw)}`);
  const fields = raw as Record<string, unknown>;
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(fields, field)) throw fail(`${tensor} has no ${field}`);
  }
  const { dtype: fileDType, shape, data_offsets: offsets } = fields;
  if (typeof fileDType !== 'string') throw fail(`${tensor} has dtype ${describe(fileDType)}, not a string`);
  const dtype = fromFileDType.get(fileDType);
  if (dtype === undefined) {
    throw fail(`${tensor} has unsupported dtype '${fileDType}' (supported: ${[...fromFileDType.keys()].join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw fail(`${tensor} has shape ${describe(shape)}, not an array of non-negative safe integers`);
  }
  const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets : [];
  if (!isIndex(begin) || !isIndex(end) || begin > end) {
    throw fail(`${tensor} has data_offsets ${describe(offsets)}, not [begin, end] with non-negative safe integers and begin <= end`);
  }
  if (end > dataLength) {
    throw fail(`${tensor} data_offsets [${begin}, ${end}] end past the ${dataLength} data bytes in the file`);
  }
  // numel * size in doubles: exact below 2^53 and, above it, still larger than any span, so a
  // gigantic claimed shape can never match by overflow (and nothing is allocated for it).
  const span = end - begin;
  const size = elementSize(dtype);
  const needed = shape.includes(0) ? 0 : shape.reduce((n: number, d: number) => n * d, size);
  if (needed !== span) {
    const needs = Number.isSafeInteger(needed) ? `${needed}` : `about ${needed}`;
    throw fail(`${tensor} data_offsets [${begin}, ${end}] hold ${span} bytes but shape ${showShape(shape)} of ${fileDType} needs ${needs}`);
  }
  return { name, dtype, shape, numel: span / size, begin, end };
}

/** Reads a safetensors file; its tensors view the file's buffer (copies only where misaligned). */
export async function readSafetensors(path: string): Promise<Safetensors> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new WeightsError(`Cannot read safetensors file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseSafetensors(bytes, path);
}

/** The header (padded to 8 bytes) and each tensor's bytes, in the order given. */
function layout(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array[] {
  if (typeof tensors !== 'object' || tensors === null) throw invalid('an object of tensors', 'tensors', tensors);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw invalid('an object of strings', 'metadata', metadata);
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw invalid('a string', `metadata '${key}'`, value);
    }
    if (Object.keys(metadata).length > 0) setOwn(header, '__metadata__', metadata);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, value] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new InvalidArgumentError(`Expected a tensor name other than '__metadata__', which safetensors reserves`);
    const tensor = Tensor.from(value);
    const { data } = tensor;
    const fileDType = toFileDType.get(tensor.dtype)!;
    setOwn(header, name, { dtype: fileDType, shape: tensor.shape, data_offsets: [offset, offset + data.byteLength] });
    offset += data.byteLength;
    blobs.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  // Spaces up to a multiple of 8 so that the data starts 8-aligned (JSON ignores trailing spaces).
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded.length), true);
  return [prefix, padded, ...blobs];
}

/** The bytes of a safetensors file holding `tensors` (in the order given) and `metadata`. */
export function serializeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const parts = layout(tensors, metadata);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: into a temporary file in the same folder (same file
 * system, so the rename is atomic), flushed, then renamed over `path`. A failure leaves `path` as
 * it was and removes the temporary file. Tensors are written straight from their own memory.
 */
export async function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  const parts = layout(tensors, metadata); // invalid input fails before any file is touched
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const file = await open(temp, 'wx');
    created = true;
    try {
      for (const part of parts) {
        // write() may write less than asked, and at most 2 GiB per call: loop in 1 GiB chunks.
        for (let at = 0; at < part.length; ) {
          at += (await file.write(part, at, Math.min(part.length - at, 2 ** 30))).bytesWritten;
        }
      }
      await file.sync(); // the data is on disk before the name points at it
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    if (created) await unlink(temp).catch(() => {});
    throw new WeightsError(`Cannot write safetensors file ${path}: ${(error as Error).message}`, { cause: error });
  }
}
