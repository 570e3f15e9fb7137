// A minimal zip reader for the archives torch.save produces: stored (uncompressed) entries, zip64
// where needed (zip-writer.ts writes them). Every number in the file is untrusted: offsets and
// sizes are checked against the file's size before anything is allocated, so a header that claims
// 2^62 bytes ends in a WeightsError, never in a huge allocation.
import * as zlib from 'node:zlib';
import { open } from 'node:fs/promises';
import { WeightsError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, the zip polynomial), table-driven, four bytes a step (slicing-by-4): every
// entry is verified on read, and this takes ~0.14 s per 100 MB against ~0.23 s byte by byte.

const crcTables = (() => {
  const tables = Array.from({ length: 4 }, () => new Uint32Array(256));
  const [t0, t1, t2, t3] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    t1[n] = (t0[t0[n]! & 0xff]! ^ (t0[n]! >>> 8)) >>> 0;
    t2[n] = (t0[t1[n]! & 0xff]! ^ (t1[n]! >>> 8)) >>> 0;
    t3[n] = (t0[t2[n]! & 0xff]! ^ (t2[n]! >>> 8)) >>> 0;
  }
  return { t0, t1, t2, t3 };
})();

function crc32Js(bytes: Uint8Array): number {
  const { t0, t1, t2, t3 } = crcTables;
  let c = 0xffffffff;
  let i = 0;
  // (length & ~3 would wrap for arrays past 2 GiB)
  for (const end4 = bytes.length - (bytes.length % 4); i < end4; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!;
  }
  for (; i < bytes.length; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// zlib's CRC-32 (Node >= 20.15) runs at memory speed; the table-driven fallback at ~0.3 GB/s
// made checking a resnet50 checkpoint cost more than reading it.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

export function crc32(bytes: Uint8Array): number {
  return zlibCrc32 ? zlibCrc32(bytes) >>> 0 : crc32Js(bytes);
}

// ---------------------------------------------------------------------------------------------
// Sources: a file read with positional reads, or bytes already in memory.

/** Where a reader gets its bytes. `read` returns a fresh array that owns its ArrayBuffer from
 * byte 0, so callers may view it as any TypedArray whose element size divides the offset. */
export interface ByteSource {
  readonly label: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A file (opened now, read later with positional reads) or bytes in memory; close it when done. */
export async function openSource(source: string | Uint8Array): Promise<ByteSource> {
  return typeof source === 'string' ? fileSource(source) : memorySource(source);
}

async function fileSource(path: string): Promise<ByteSource> {
  const label = `'${path}'`;
  const fsError = (error: unknown) =>
    new WeightsError(`Cannot read weights file ${label}: ${(error as Error).message}`, { cause: error });
  const handle = await open(path, 'r').catch((error: unknown) => {
    throw fsError(error);
  });
  const size = await handle.stat().then(
    (stats) => stats.size,
    async (error: unknown) => {
      await handle.close();
      throw fsError(error);
    },
  );
  if (size <= WHOLE_FILE_LIMIT) {
    // One read of the whole file instead of two per entry: hundreds of small asynchronous reads
    // (each a trip through libuv's pool) cost more than the bytes themselves.
    const whole = await handle.readFile().catch((error: unknown) => {
      throw fsError(error);
    }).finally(() => handle.close());
    return memorySource(whole, label);
  }
  return {
    label,
    size,
    async read(offset, length) {
      checkRange(label, size, offset, length);
      const bytes = new Uint8Array(allocate(length, label));
      for (let done = 0; done < length; ) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done).catch((error: unknown) => {
          throw fsError(error);
        });
        if (bytesRead === 0) throw new WeightsError(`Cannot read weights file ${label}: it was truncated while being read`);
        done += bytesRead;
      }
      return bytes;
    },
    close: () => handle.close(),
  };
}

/** A zeroed buffer; failing to get one (a legitimately huge tensor, too little memory) is a
 * WeightsError like any other reason a file cannot be read. */
export function allocate(length: number, label: string): ArrayBuffer {
  try {
    return new ArrayBuffer(length);
  } catch (error) {
    throw new WeightsError(`Cannot allocate ${length} bytes to read ${label}: ${(error as Error).message}`, { cause: error });
  }
}

/** Callers check every range first; this guard keeps a missed check from reading short. */
function checkRange(label: string, size: number, offset: number, length: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new WeightsError(`Malformed zip archive ${label}: ${length} bytes at byte ${offset} lie outside its ${size} bytes`);
  }
}

/** Files up to this size are read in one go; larger ones entry by entry. */
const WHOLE_FILE_LIMIT = 512 * 1024 * 1024;

function memorySource(bytes: Uint8Array, label = 'the given buffer'): ByteSource {
  return {
    label,
    size: bytes.length,
    async read(offset, length) {
      checkRange(label, bytes.length, offset, length);
      // A copy, not a view: the result must own its buffer (and Buffer#slice would not copy).
      const copy = new Uint8Array(allocate(length, label));
      copy.set(bytes.subarray(offset, offset + length));
      return copy;
    },
    close: async () => {},
  };
}

// ---------------------------------------------------------------------------------------------
// Reader

export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_ZIP64_EOCD = 0x06064b50;
export const SIG_ZIP64_LOCATOR = 0x07064b50;
export const EOCD_SIZE = 22;
export const CENTRAL_SIZE = 46;
export const LOCAL_SIZE = 30;
export const ZIP64_LOCATOR_SIZE = 20;
export const ZIP64_EOCD_SIZE = 56;
const MAX_COMMENT = 0xffff;
export const U32_MAX = 0xffffffff;
export const U16_MAX = 0xffff;

const methodNames: Record<number, string> = { 8: 'deflate', 9: 'deflate64', 12: 'bzip2', 14: 'lzma', 93: 'zstd', 95: 'xz' };

export interface ZipEntry {
  readonly name: string;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
  /** Set for an entry compressed with a method this reader does not inflate (read() refuses it). */
  readonly unsupportedMethod?: number;
}

/** Reads a stored-only zip archive from a source, which stays the caller's to close. */
export class ZipReader {
  /** Entries by name, in central directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly #source: ByteSource;
  readonly #dataEnd: number;

  private constructor(source: ByteSource, entries: Map<string, ZipEntry>, dataEnd: number) {
    this.#source = source;
    this.entries = entries;
    this.#dataEnd = dataEnd;
  }

  /** Indexes the archive: reads and checks its central directory. */
  static async open(source: ByteSource): Promise<ZipReader> {
    const { entries, centralOffset } = await readCentralDirectory(source);
    return new ZipReader(source, entries, centralOffset);
  }

  get label(): string {
    return this.#source.label;
  }

  /** The entry's bytes, checked against its CRC-32. */
  async read(name: string): Promise<Uint8Array> {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new WeightsError(`${this.label} has no entry '${name}'`);
    const source = this.#source;
    if (entry.unsupportedMethod !== undefined) {
      const known = methodNames[entry.unsupportedMethod];
      throw new WeightsError(
        `Cannot read ${source.label}: entry '${name}' is compressed with method ${entry.unsupportedMethod}${known ? ` (${known})` : ''}; ` +
          'PyTorch archives store entries uncompressed (method 0)',
      );
    }
    const fail = (detail: string) => new WeightsError(`Malformed zip archive ${source.label}: entry '${name}' ${detail}`);
    if (entry.localHeaderOffset + LOCAL_SIZE > this.#dataEnd) throw fail('has a local header past the central directory');
    const header = view(await source.read(entry.localHeaderOffset, LOCAL_SIZE));
    if (header.getUint32(0, true) !== SIG_LOCAL) throw fail(`has no local header at byte ${entry.localHeaderOffset}`);
    const nameLength = header.getUint16(26, true);
    const dataStart = entry.localHeaderOffset + LOCAL_SIZE + nameLength + header.getUint16(28, true);
    if (dataStart + entry.size > this.#dataEnd) {
      throw fail(`claims ${entry.size} bytes at byte ${dataStart}, past the data area (${this.#dataEnd} bytes)`);
    }
    // The local name must agree with the central one: two readers must never see two archives.
    const localName = utf8.decode(await source.read(entry.localHeaderOffset + LOCAL_SIZE, nameLength));
    if (localName !== name) throw fail(`is named '${localName}' in its local header`);
    const data = await source.read(dataStart, entry.size);
    const actual = crc32(data);
    if (actual !== entry.crc32) {
      throw fail(`is corrupt: CRC-32 ${hex32(actual)} but the archive records ${hex32(entry.crc32)}`);
    }
    return data;
  }
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

const utf8 = new TextDecoder('utf-8');

/** A little-endian u64 as a number, or Infinity when it exceeds 2^53 (which no file can reach,
 * so the bounds checks that follow reject it). */
function u64(data: DataView, at: number): number {
  const value = data.getBigUint64(at, true);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : Infinity;
}

async function readCentralDirectory(source: ByteSource): Promise<{ entries: Map<string, ZipEntry>; centralOffset: number }> {
  const fail = (detail: string) => new WeightsError(`Malformed zip archive ${source.label}: ${detail}`);
  if (source.size < EOCD_SIZE) throw fail(`${source.size} bytes is too short for a zip archive`);

  // The end-of-central-directory record sits in the last 22 bytes plus up to 64 KiB of comment.
  const tailStart = Math.max(0, source.size - EOCD_SIZE - MAX_COMMENT);
  const tail = await source.read(tailStart, source.size - tailStart);
  const tailView = view(tail);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tailView.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tailView.getUint16(i + 20, true) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail('no end of central directory record');
  const eocdOffset = tailStart + eocd;
  if (tailView.getUint16(eocd + 4, true) !== 0 || tailView.getUint16(eocd + 6, true) !== 0) {
    throw fail('multi-disk archives are not supported');
  }
  let count = tailView.getUint16(eocd + 10, true);
  let centralSize = tailView.getUint32(eocd + 12, true);
  let centralOffset = tailView.getUint32(eocd + 16, true);
  let centralEnd = eocdOffset;

  // PyTorch always writes the zip64 locator; other writers only when a field overflows.
  const locatorOffset = eocdOffset - ZIP64_LOCATOR_SIZE;
  const locator = locatorOffset >= 0 ? view(await source.read(locatorOffset, ZIP64_LOCATOR_SIZE)) : undefined;
  if (locator !== undefined && locator.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
    const recordOffset = u64(locator, 8);
    if (recordOffset + ZIP64_EOCD_SIZE > locatorOffset) {
      throw fail(`zip64 end of central directory at ${recordOffset} is out of range`);
    }
    const record = view(await source.read(recordOffset, ZIP64_EOCD_SIZE));
    if (record.getUint32(0, true) !== SIG_ZIP64_EOCD) throw fail(`no zip64 end of central directory at byte ${recordOffset}`);
    const total = u64(record, 32);
    count = total;
    centralSize = u64(record, 40);
    centralOffset = u64(record, 48);
    centralEnd = recordOffset;
  } else if (count === U16_MAX || centralSize === U32_MAX || centralOffset === U32_MAX) {
    throw fail('the end of central directory needs zip64 values but there is no zip64 locator');
  }
  if (centralOffset + centralSize > centralEnd) {
    throw fail(`central directory (${centralSize} bytes at byte ${centralOffset}) does not fit before byte ${centralEnd}`);
  }
  if (count * CENTRAL_SIZE > centralSize) throw fail(`${count} entries cannot fit in a ${centralSize}-byte central directory`);

  const central = await source.read(centralOffset, centralSize);
  const data = view(central);
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let index = 0; index < count; index++) {
    if (at + CENTRAL_SIZE > central.length || data.getUint32(at, true) !== SIG_CENTRAL) {
      throw fail(`central directory entry ${index} at byte ${centralOffset + at} is missing or cut short`);
    }
    const flags = data.getUint16(at + 8, true);
    const method = data.getUint16(at + 10, true);
    const crc = data.getUint32(at + 16, true);
    let compressedSize = data.getUint32(at + 20, true);
    let size = data.getUint32(at + 24, true);
    const nameLength = data.getUint16(at + 28, true);
    const extraLength = data.getUint16(at + 30, true);
    const commentLength = data.getUint16(at + 32, true);
    let localHeaderOffset = data.getUint32(at + 42, true);
    const end = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > central.length) throw fail(`central directory entry ${index} runs past the directory`);
    const name = utf8.decode(central.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength));

    // Zip64 extended information: present fields follow the order size, compressed size, offset.
    let extra = at + CENTRAL_SIZE + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = data.getUint16(extra, true);
      const length = data.getUint16(extra + 2, true);
      const fieldsEnd = extra + 4 + length;
      if (fieldsEnd > extraEnd) throw fail(`entry '${name}' has an extra field that runs past its end`);
      if (id === 0x0001) {
        let field = extra + 4;
        const next = (): number => {
          if (field + 8 > fieldsEnd) throw fail(`entry '${name}' has a zip64 field too short for its values`);
          const value = u64(data, field);
          field += 8;
          return value;
        };
        if (size === U32_MAX) size = next();
        if (compressedSize === U32_MAX) compressedSize = next();
        if (localHeaderOffset === U32_MAX) localHeaderOffset = next();
      }
      extra = fieldsEnd;
    }

    if (flags & 0x0001) throw fail(`entry '${name}' is encrypted`);
    if (method !== 0) {
      // Listed, not read: the entry names alone can say what the archive is (a TorchScript archive
      // deflates some of its entries); reading one is refused by read().
      if (entries.has(name)) throw fail(`entry '${name}' appears twice`);
      entries.set(name, { name, size, crc32: crc, localHeaderOffset, unsupportedMethod: method });
      at = end;
      continue;
    }
    if (compressedSize !== size) throw fail(`stored entry '${name}' has compressed size ${compressedSize} but size ${size}`);
    if (localHeaderOffset + LOCAL_SIZE + size > centralOffset) {
      throw fail(`entry '${name}' (${size} bytes at byte ${localHeaderOffset}) does not fit before the central directory`);
    }
    if (entries.has(name)) throw fail(`entry '${name}' appears twice`);
    entries.set(name, { name, size, crc32: crc, localHeaderOffset });
    at = end;
  }
  return { entries, centralOffset };
}
