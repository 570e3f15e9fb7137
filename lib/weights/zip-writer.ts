// A minimal zip writer for torch.save-style archives: stored entries with their CRC-32, data on
// 64-byte boundaries as in PyTorch's archives, zip64 records when sizes, offsets or the entry
// count need them, and an atomic write (temporary file, fsync, rename).
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WeightsError } from '../errors.js';
import {
  CENTRAL_SIZE,
  crc32,
  EOCD_SIZE,
  LOCAL_SIZE,
  SIG_CENTRAL,
  SIG_EOCD,
  SIG_LOCAL,
  SIG_ZIP64_EOCD,
  SIG_ZIP64_LOCATOR,
  U16_MAX,
  U32_MAX,
  view,
  ZIP64_EOCD_SIZE,
  ZIP64_LOCATOR_SIZE,
} from './zip.js';

export interface ZipWriteEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

export interface ZipWriteOptions {
  /** Write zip64 records even where the sizes do not need them (to test readers on small files). */
  readonly forceZip64?: boolean;
}

/** Data starts on this boundary, as in PyTorch's archives, so readers may map tensors in place. */
const ALIGNMENT = 64;
const PAD_FIELD_ID = 0x4246; // 'FB', the id PyTorch gives its padding field
const encoder = new TextEncoder();

/**
 * The archive as a sequence of byte arrays: headers are built here, entry data is passed through
 * without copying. The concatenation of the parts is the archive.
 */
export function* zipParts(entries: Iterable<ZipWriteEntry>, options: ZipWriteOptions = {}): Generator<Uint8Array> {
  const force = options.forceZip64 === true;
  const centrals: Uint8Array[] = [];
  let offset = 0;
  let count = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    if (name.length > U16_MAX) throw new WeightsError(`Zip entry name is too long: ${entry.name.slice(0, 80)}...`);
    const size = entry.data.length;
    const crc = crc32(entry.data);
    const bigSize = force || size >= U32_MAX;
    const bigOffset = force || offset >= U32_MAX;

    // Local header: the zip64 field, when present, must carry both sizes.
    const localZip64 = bigSize ? 20 : 0;
    const unpadded = offset + LOCAL_SIZE + name.length + localZip64 + 4;
    const pad = (ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT;
    const local = new Uint8Array(LOCAL_SIZE + name.length + localZip64 + 4 + pad);
    const l = view(local);
    l.setUint32(0, SIG_LOCAL, true);
    l.setUint16(4, bigSize ? 45 : 20, true);
    l.setUint16(6, 0x0800, true); // names are UTF-8
    l.setUint16(12, 0x0021, true); // 1980-01-01 00:00: a fixed date keeps the output reproducible
    l.setUint32(14, crc, true);
    l.setUint32(18, bigSize ? U32_MAX : size, true);
    l.setUint32(22, bigSize ? U32_MAX : size, true);
    l.setUint16(26, name.length, true);
    l.setUint16(28, localZip64 + 4 + pad, true);
    local.set(name, LOCAL_SIZE);
    let at = LOCAL_SIZE + name.length;
    if (bigSize) {
      l.setUint16(at, 0x0001, true);
      l.setUint16(at + 2, 16, true);
      l.setBigUint64(at + 4, BigInt(size), true);
      l.setBigUint64(at + 12, BigInt(size), true);
      at += 20;
    }
    l.setUint16(at, PAD_FIELD_ID, true);
    l.setUint16(at + 2, pad, true);
    local.fill(0x5a, at + 4); // 'Z', as PyTorch pads

    const centralZip64 = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
    const central = new Uint8Array(CENTRAL_SIZE + name.length + (centralZip64 ? 4 + centralZip64 : 0));
    const c = view(central);
    c.setUint32(0, SIG_CENTRAL, true);
    c.setUint16(4, 0x031e, true); // made by: Unix, spec 3.0
    c.setUint16(6, bigSize || bigOffset ? 45 : 20, true);
    c.setUint16(8, 0x0800, true);
    c.setUint16(14, 0x0021, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, bigSize ? U32_MAX : size, true);
    c.setUint32(24, bigSize ? U32_MAX : size, true);
    c.setUint16(28, name.length, true);
    c.setUint16(30, centralZip64 ? 4 + centralZip64 : 0, true);
    c.setUint32(42, bigOffset ? U32_MAX : offset, true);
    central.set(name, CENTRAL_SIZE);
    if (centralZip64) {
      let field = CENTRAL_SIZE + name.length;
      c.setUint16(field, 0x0001, true);
      c.setUint16(field + 2, centralZip64, true);
      field += 4;
      if (bigSize) {
        c.setBigUint64(field, BigInt(size), true);
        c.setBigUint64(field + 8, BigInt(size), true);
        field += 16;
      }
      if (bigOffset) c.setBigUint64(field, BigInt(offset), true);
    }
    centrals.push(central);
    count++;

    yield local;
    yield entry.data;
    offset += local.length + size;
  }

  const centralOffset = offset;
  const centralSize = centrals.reduce((n, part) => n + part.length, 0);
  yield* centrals;
  const zip64 = force || count >= U16_MAX || centralOffset >= U32_MAX || centralSize >= U32_MAX;
  if (zip64) {
    const record = new Uint8Array(ZIP64_EOCD_SIZE + ZIP64_LOCATOR_SIZE);
    const r = view(record);
    r.setUint32(0, SIG_ZIP64_EOCD, true);
    r.setBigUint64(4, BigInt(ZIP64_EOCD_SIZE - 12), true);
    r.setUint16(12, 0x031e, true);
    r.setUint16(14, 45, true);
    r.setBigUint64(24, BigInt(count), true);
    r.setBigUint64(32, BigInt(count), true);
    r.setBigUint64(40, BigInt(centralSize), true);
    r.setBigUint64(48, BigInt(centralOffset), true);
    r.setUint32(ZIP64_EOCD_SIZE, SIG_ZIP64_LOCATOR, true);
    r.setBigUint64(ZIP64_EOCD_SIZE + 8, BigInt(centralOffset + centralSize), true);
    r.setUint32(ZIP64_EOCD_SIZE + 16, 1, true);
    yield record;
  }
  const eocd = new Uint8Array(EOCD_SIZE);
  const e = view(eocd);
  e.setUint32(0, SIG_EOCD, true);
  e.setUint16(8, zip64 ? U16_MAX : count, true);
  e.setUint16(10, zip64 ? U16_MAX : count, true);
  e.setUint32(12, zip64 ? U32_MAX : centralSize, true);
  e.setUint32(16, zip64 ? U32_MAX : centralOffset, true);
  yield eocd;
}

/** The whole archive in memory. */
export function zipToBytes(entries: Iterable<ZipWriteEntry>, options?: ZipWriteOptions): Uint8Array {
  return Buffer.concat([...zipParts(entries, options)]);
}

/** Small parts are gathered into writes of about this size. */
const WRITE_BATCH = 1 << 20;

/**
 * Writes the archive to a temporary file next to `path`, flushes it to disk and renames it into
 * place: readers of `path` see the old file or the complete new one, never a partial write.
 */
export async function writeZip(path: string, entries: Iterable<ZipWriteEntry>, options?: ZipWriteOptions): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
    const fileHandle = handle;
    const write = async (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length; ) {
        done += (await fileHandle.write(bytes, done, bytes.length - done)).bytesWritten;
      }
    };
    let batch: Uint8Array[] = [];
    let batched = 0;
    const flush = async () => {
      if (batch.length > 0) await write(Buffer.concat(batch));
      batch = [];
      batched = 0;
    };
    for (const part of zipParts(entries, options)) {
      if (part.length >= WRITE_BATCH) {
        await flush();
        await write(part);
      } else {
        batch.push(part);
        batched += part.length;
        if (batched >= WRITE_BATCH) await flush();
      }
    }
    await flush();
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    if (error instanceof WeightsError) throw error;
    throw new WeightsError(`Cannot write weights file '${path}': ${(error as Error).message}`, { cause: error });
  }
}
