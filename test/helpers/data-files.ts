// Data set files made by the tests: IDX (plain or gzipped), CIFAR binary records, and small
// in-memory datasets with known pixels.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageDataset } from '../../lib/data/dataset.ts';

export const fashionRoot = '/usr/share/datasets/fashion-mnist';

export async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }, prefix = 'data-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An IDX uint8 file: magic 00 00 08 <ndim>, big-endian sizes, data. */
export function idxBytes(shape: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt32BE(0x800 + shape.length, 0);
  shape.forEach((size, d) => header.writeUInt32BE(size, 4 + 4 * d));
  return Buffer.concat([header, data]);
}

export async function writeIdx(path: string, shape: readonly number[], data: Uint8Array, gzip = false): Promise<void> {
  const bytes = idxBytes(shape, data);
  await writeFile(path, gzip ? gzipSync(bytes) : bytes);
}

/** A deterministic, distinctive byte for image k, channel c, row y, column x. */
export function patternByte(k: number, c: number, y: number, x: number): number {
  return (k * 37 + c * 101 + y * 11 + x * 3 + 1) & 255;
}

export function patternImage(k: number, channels: number, height: number, width: number): Uint8Array {
  const out = new Uint8Array(channels * height * width);
  for (let c = 0, i = 0; c < channels; c++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++, i++) out[i] = patternByte(k, c, y, x);
  return out;
}

/** CIFAR binary records: [coarse,] label, then 3072 planar pixels of patternImage(k). */
export function cifarBytes(labels: ReadonlyArray<number | [coarse: number, fine: number]>, first = 0): Buffer {
  return Buffer.concat(
    labels.map((label, i) => Buffer.concat([Buffer.from(typeof label === 'number' ? [label] : label), patternImage(first + i, 3, 32, 32)])),
  );
}

/** N images of patternImage, labels k % classes. */
export function patternDataset(n: number, shape: [number, number, number], classes = 3, mean?: number[], std?: number[]): ImageDataset {
  const [c, h, w] = shape;
  const pixels = new Uint8Array(n * c * h * w);
  for (let k = 0; k < n; k++) pixels.set(patternImage(k, c, h, w), k * c * h * w);
  return new ImageDataset({
    pixels,
    shape: [n, c, h, w],
    labels: Array.from({ length: n }, (_, k) => k % classes),
    classes: Array.from({ length: classes }, (_, i) => `class${i}`),
    mean: mean ?? new Array(c).fill(0),
    std: std ?? new Array(c).fill(1),
  });
}
