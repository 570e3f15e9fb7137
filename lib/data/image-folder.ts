// ImageFolder: root/<class>/<...>/<image>, as torchvision's datasets.ImageFolder lays it out.
// Classes are the sub-folders of root sorted by code point (Python's sorted()), each class folder is
// walked recursively with names sorted, and files are kept by extension. Images are decoded with
// sharp (on libuv's thread pool, `concurrency` at a time) to 8-bit sRGB and brought to one size so
// that they can be batched (lib/image/fitted-decode.ts, which serving uses too). Alpha is dropped,
// as torchvision's loader (PIL's Image.open(...).convert('RGB')) does; the EXIF orientation is
// applied, which torchvision's loader does not: a phone photo is trained on upright, as it is
// then classified.
import { availableParallelism } from 'node:os';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { decodeFitted, type Fit } from '../image/fitted-decode.js';
import { DataError } from './errors.js';

/** The extensions of torchvision's IMG_EXTENSIONS that sharp can decode (not .bmp, .ppm, .pgm),
 * plus .gif and .avif, which sharp reads too. Compared lower-cased. */
export const imageExtensions = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'] as const;

/**
 * - 'crop' (default): scale so the shorter side is the target (the image covers the target), then
 *   cut the centre out: torchvision's Resize(size) followed by CenterCrop(size). Keeps the aspect.
 * - 'stretch': scale each side to the target independently (Resize((h, w))). Distorts the aspect.
 * Resampling is sharp's default (Lanczos-3), so values differ a little from PIL's bilinear; an
 * image already at the target size is not resampled at all.
 */
export type ResizeMode = 'crop' | 'stretch';

/** The preprocess() `fit` that reproduces a ResizeMode. */
export const fitOf = (resize: ResizeMode): Fit => (resize === 'crop' ? 'cover' : 'fill');

export interface ImageFolderScan {
  classes: string[];
  /**
   * `path` is for messages and `sources`; `file` is the exact bytes of the path, which differ from
   * `path` when a name is not valid UTF-8 (such files are read too, as torchvision reads them).
   */
  samples: Array<{ path: string; label: number; file: Buffer }>;
}

// Paths are Buffers while walking: a file name that is not valid UTF-8 has no exact string form.
const byCodePoint = (a: Buffer, b: Buffer) => Buffer.compare(a, b); // UTF-8 byte order = code point order
const slash = Buffer.from('/');
const joinPath = (dir: Buffer, name: Buffer) => Buffer.concat(dir.at(-1) === 0x2f ? [dir, name] : [dir, slash, name]);
const shown = (path: Buffer) => path.toString();

function unreadable(what: string, path: Buffer, error: unknown): DataError {
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new DataError(`Cannot read the ${what} '${shown(path)}' (${code})`, { file: shown(path), cause: error });
}

async function list(dir: Buffer): Promise<Buffer[]> {
  try {
    return await readdir(dir, { encoding: 'buffer' });
  } catch (error) {
    throw unreadable('folder', dir, error);
  }
}

/** Follows links; a dangling link or a name that vanished is neither a folder nor a file. */
async function kindOf(path: Buffer): Promise<'folder' | 'file' | 'other'> {
  try {
    const info = await stat(path);
    return info.isDirectory() ? 'folder' : info.isFile() ? 'file' : 'other';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return 'other';
    throw unreadable('file', path, error);
  }
}

/**
 * Every folder under `dir` (itself included), following links as os.walk(followlinks=True), except
 * a link back to a folder it is already inside: os.walk (and so torchvision) loops forever there.
 */
async function folders(dir: Buffer, out: Buffer[], ancestors: ReadonlySet<string> = new Set()): Promise<Buffer[]> {
  const real = await realpath(dir).catch((error: unknown) => {
    throw unreadable('folder', dir, error);
  });
  if (ancestors.has(real)) return out;
  out.push(dir);
  const inside = new Set(ancestors).add(real);
  for (const name of await list(dir)) {
    const path = joinPath(dir, name);
    if ((await kindOf(path)) === 'folder') await folders(path, out, inside);
  }
  return out;
}

/** torchvision's order: `for root, _, files in sorted(os.walk(class_dir))`, then `sorted(files)`.
 * Folders sort by their whole path, so a folder's own files come before its sub-folders'. */
async function imagesUnder(dir: Buffer, keep: (name: string) => boolean): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const folder of (await folders(dir, [])).sort(byCodePoint)) {
    for (const name of (await list(folder)).sort(byCodePoint)) {
      if (!keep(name.toString('latin1'))) continue; // extensions are ASCII: any byte-preserving decoding works
      const path = joinPath(folder, name);
      if ((await kindOf(path)) === 'file') out.push(path);
    }
  }
  return out;
}

/** Lists the classes and the images under `root`, without decoding anything. */
export async function scanImageFolder(root: string, extensions: readonly string[] = imageExtensions): Promise<ImageFolderScan> {
  const rootPath = Buffer.from(root);
  if ((await kindOf(rootPath)) !== 'folder') throw new DataError(`Cannot find the image folder '${root}'`, { file: root });
  const entries = (await list(rootPath)).sort(byCodePoint);
  const classFolders: Buffer[] = [];
  for (const name of entries) if ((await kindOf(joinPath(rootPath, name))) === 'folder') classFolders.push(name);
  const classes = classFolders.map((name) => name.toString());
  if (classes.length === 0) throw new DataError(`Cannot find any class folder in '${root}'`, { file: root });
  const wanted = new Set(extensions.map((e) => e.toLowerCase()));
  const keep = (name: string) => [...wanted].some((e) => name.toLowerCase().endsWith(e));
  const samples: ImageFolderScan['samples'] = [];
  const empty: string[] = [];
  for (const [label, name] of classFolders.entries()) {
    const paths = await imagesUnder(joinPath(rootPath, name), keep);
    if (paths.length === 0) empty.push(classes[label]!);
    for (const file of paths) samples.push({ path: shown(file), label, file });
  }
  // As torchvision: a class with no image is an error, not a silently unused label.
  if (empty.length > 0) {
    throw new DataError(`Found no image for the class(es) ${empty.map((c) => `'${c}'`).join(', ')} in '${root}'; extensions read: ${[...wanted].join(', ')}`, { file: root });
  }
  return { classes, samples };
}

/** Decodes one image to `height` x `width` sRGB, channel-planar, into `out` (3 * height * width). */
export async function decodeImage(file: string | Buffer, height: number, width: number, resize: ResizeMode, out: Uint8Array): Promise<void> {
  const path = file.toString();
  // Read here rather than by sharp: an unreadable file then says why (EACCES, EISDIR...), where
  // sharp says "unsupported image format", and a name that is not UTF-8 can still be opened.
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw unreadable('image', Buffer.from(file), error);
  }
  let data: Buffer;
  try {
    data = await decodeFitted(bytes, height, width, fitOf(resize));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new DataError(`Cannot decode image '${path}': ${message}`, { file: path, cause: error });
  }
  // sharp gives interleaved RGBRGB...; ImageDataset keeps planes.
  const plane = height * width;
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[p] = data[i]!;
    out[plane + p] = data[i + 1]!;
    out[2 * plane + p] = data[i + 2]!;
  }
}

export interface ImageFolderData extends ImageFolderScan {
  /** N x 3 x height x width, in a SharedArrayBuffer. */
  pixels: Uint8Array;
  labels: Int32Array;
}

/** Scans and decodes a whole folder. At most `concurrency` decodes are in flight at once, so a big
 * folder does not queue thousands of sharp jobs (and their file buffers) at the same time. */
export async function readImageFolder(
  root: string,
  options: { height: number; width: number; resize?: ResizeMode; extensions?: readonly string[]; concurrency?: number },
): Promise<ImageFolderData> {
  const { height, width, resize = 'crop', extensions = imageExtensions, concurrency = availableParallelism() } = options;
  const scan = await scanImageFolder(root, extensions);
  const size = 3 * height * width;
  const pixels = new Uint8Array(new SharedArrayBuffer(scan.samples.length * size));
  const labels = new Int32Array(new SharedArrayBuffer(scan.samples.length * 4));
  let next = 0;
  let failed = false; // after one failure the other runners stop taking images
  const runner = async () => {
    while (next < scan.samples.length && !failed) {
      const i = next++;
      const { file, label } = scan.samples[i]!;
      labels[i] = label;
      try {
        await decodeImage(file, height, width, resize, pixels.subarray(i * size, (i + 1) * size));
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, scan.samples.length) }, runner));
  return { ...scan, pixels, labels };
}
