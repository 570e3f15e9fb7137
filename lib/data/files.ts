// File access shared by the readers: whole-file reads (optionally gunzipped) that turn fs and zlib
// failures into DataErrors naming the file, and the search for a data set's files under a root.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { constants, createGunzip, gunzip } from 'node:zlib';
import { DataError } from './errors.js';

const gunzipAsync = promisify(gunzip);

export interface FileBytes {
  bytes: Uint8Array;
  /** The file was gzip-compressed: offsets in errors refer to the decompressed data. */
  gzip: boolean;
  /** For a gzip stream cut short: the compressed length, where it ends. */
  truncatedGzipAt?: number;
  /** Inflating stopped here: the stream goes on past the length its header allows. */
  inflatedPast?: number;
}

/** How long the decompressed data may be, decided from its first `headLength` bytes. */
export interface InflateLimit {
  headLength: number;
  maxLength: (head: Uint8Array) => number;
}

export async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new DataError(`Cannot read data file '${file}': ${code}`, { file, cause: error });
  }
}

/** Reads a file and gunzips it when it starts with gzip's magic 1f 8b (whatever its name). The
 * inflate runs on libuv's thread pool. A truncated stream is not an error here: the partial data
 * comes back, so the format reader can say where its data stops short. */
export async function readMaybeGzip(file: string, limit?: InflateLimit): Promise<FileBytes> {
  const raw = await readBytes(file);
  if (!(raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b)) return { bytes: raw, gzip: false };
  if (limit) return gunzipBounded(file, raw, limit);
  try {
    return { bytes: await gunzipAsync(raw), gzip: true };
  } catch (error) {
    if ((error as { code?: string }).code === 'Z_BUF_ERROR') {
      const partial = await gunzipAsync(raw, { finishFlush: constants.Z_SYNC_FLUSH });
      return { bytes: partial, gzip: true, truncatedGzipAt: raw.length };
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new DataError(`Malformed data file '${file}': corrupt gzip stream (${message})`, { file, cause: error });
  }
}

/**
 * Inflates no more than the header allows (plus one byte, to know that there was more): a 3 MB
 * gzip that inflates to gigabytes stops at the size its own header declares, instead of filling
 * the memory (a decompression bomb).
 */
function gunzipBounded(file: string, raw: Uint8Array, limit: InflateLimit): Promise<FileBytes> {
  return new Promise((resolve, reject) => {
    const inflater = createGunzip();
    const chunks: Buffer[] = [];
    let total = 0;
    let max = Number.POSITIVE_INFINITY;
    let headSeen = false;
    const bytes = (upTo = total) => Buffer.concat(chunks, total).subarray(0, upTo);
    inflater.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (!headSeen && total >= limit.headLength) {
        headSeen = true;
        max = limit.maxLength(bytes(limit.headLength));
      }
      if (total > max) {
        inflater.destroy();
        resolve({ bytes: bytes(max), gzip: true, inflatedPast: max });
      }
    });
    inflater.on('end', () => resolve({ bytes: bytes(), gzip: true }));
    inflater.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'Z_BUF_ERROR') return resolve({ bytes: bytes(), gzip: true, truncatedGzipAt: raw.length });
      const message = error instanceof Error ? error.message : String(error);
      reject(new DataError(`Malformed data file '${file}': corrupt gzip stream (${message})`, { file, cause: error }));
    });
    inflater.end(raw);
  });
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The first of `names` found in any of `dirs` (in that order), or a DataError listing the places
 * looked in. */
export async function findFile(dirs: readonly string[], names: readonly string[], what: string): Promise<string> {
  for (const dir of dirs) {
    for (const name of names) {
      const path = join(dir, name);
      if (await isFile(path)) return path;
    }
  }
  throw new DataError(
    `Cannot find ${what}: looked for ${names.map((n) => `'${n}'`).join(' or ')} in ${dirs.map((d) => `'${d}'`).join(', ')}`,
  );
}
