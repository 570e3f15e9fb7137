// CIFAR-10 and CIFAR-100 "binary version" files. Each record is the label byte(s) then 3072 pixel
// bytes: the 1024 red values of the 32x32 image row by row, then green, then blue. That is already
// the N x C x H x W layout ImageDataset keeps, so a record's pixels are copied as one block.
import { join } from 'node:path';
import { DataError, malformed } from './errors.js';
import { isDirectory, readBytes } from './files.js';

export type CifarVariant = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';
export type CifarLabels = 'fine' | 'coarse';

export const CIFAR_PIXELS = 3 * 32 * 32;

const layout = {
  cifar10: { folder: 'cifar-10-batches-bin', labelBytes: 1, train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ['test_batch.bin'] },
  cifar100: { folder: 'cifar-100-binary', labelBytes: 2, train: ['train.bin'], test: ['test.bin'] },
} as const;

export function cifarRecordSize(variant: CifarVariant): number {
  return layout[variant].labelBytes + CIFAR_PIXELS;
}

/** The split's files. `root` may be the extracted folder (cifar-10-batches-bin, cifar-100-binary)
 * or the folder that holds it, as torchvision's `root` is. */
export async function cifarFiles(root: string, variant: CifarVariant, split: CifarSplit): Promise<string[]> {
  const { folder } = layout[variant];
  const dir = (await isDirectory(join(root, folder))) ? join(root, folder) : root;
  if (!(await isDirectory(dir))) throw new DataError(`Cannot find the ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} folder '${root}'`, { file: root });
  return layout[variant][split].map((name) => join(dir, name));
}

export interface CifarData {
  count: number;
  /** count x 3 x 32 x 32, in a SharedArrayBuffer. */
  pixels: Uint8Array;
  /** One label per image, in a SharedArrayBuffer. */
  labels: Int32Array;
}

/**
 * Reads and concatenates binary CIFAR files. Every file's length must be a whole number of
 * records, and every label byte in range (CIFAR-10 < 10; CIFAR-100 coarse < 20, fine < 100: both
 * are checked whichever one is kept).
 */
export async function readCifar(files: readonly string[], variant: CifarVariant, labelKind: CifarLabels = 'fine'): Promise<CifarData> {
  const record = cifarRecordSize(variant);
  const buffers: Uint8Array[] = [];
  for (const file of files) {
    const bytes = await readBytes(file);
    if (bytes.length % record !== 0) {
      const whole = Math.floor(bytes.length / record);
      throw malformed(
        file,
        whole * record,
        `${bytes.length} bytes is not a whole number of ${record}-byte ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records: ` +
          `record ${whole} starting here has only ${bytes.length - whole * record} bytes`,
      );
    }
    buffers.push(bytes);
  }
  const count = buffers.reduce((n, b) => n + b.length / record, 0);
  const pixels = new Uint8Array(new SharedArrayBuffer(count * CIFAR_PIXELS));
  const labels = new Int32Array(new SharedArrayBuffer(count * 4));
  let n = 0;
  buffers.forEach((bytes, f) => {
    for (let offset = 0; offset < bytes.length; offset += record, n++) {
      const first = bytes[offset]!;
      if (variant === 'cifar10') {
        if (first >= 10) throw malformed(files[f]!, offset, `label ${first} of record ${offset / record} is not in 0..9`);
        labels[n] = first;
      } else {
        const fine = bytes[offset + 1]!;
        if (first >= 20) throw malformed(files[f]!, offset, `coarse label ${first} of record ${offset / record} is not in 0..19`);
        if (fine >= 100) throw malformed(files[f]!, offset + 1, `fine label ${fine} of record ${offset / record} is not in 0..99`);
        labels[n] = labelKind === 'coarse' ? first : fine;
      }
      pixels.set(bytes.subarray(offset + record - CIFAR_PIXELS, offset + record), n * CIFAR_PIXELS);
    }
  });
  return { count, pixels, labels };
}
