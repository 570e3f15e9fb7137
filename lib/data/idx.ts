// IDX files (LeCun's MNIST format, also Fashion-MNIST's): a 4-byte magic 00 00 <type> <ndim>, then
// ndim big-endian uint32 sizes, then the data, row-major. Only type 0x08 (unsigned byte) is read:
// it is what the image (0x00000803) and label (0x00000801) files of both data sets use.
import { malformed } from './errors.js';
import { readMaybeGzip } from './files.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const UINT8 = 0x08;

export interface IdxArray {
  /** The sizes from the header: [N, rows, cols] for images, [N] for labels. */
  shape: number[];
  /** The data bytes (a view on the file's bytes, after the header). */
  data: Uint8Array;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * Checks an IDX file's header against `ndim` and its length against the header, and returns its
 * data. `decompressed` adds "of the decompressed data" to offsets (the file was gzipped) and
 * `truncatedGzipAt` says where a cut-short gzip stream ends.
 */
export function parseIdx(
  bytes: Uint8Array,
  file: string,
  ndim: number,
  context: { decompressed?: boolean; truncatedGzipAt?: number } = {},
): IdxArray {
  const where = context.decompressed ? ' of the decompressed data' : '';
  const cut =
    context.truncatedGzipAt === undefined
      ? ''
      : ` (the gzip stream is cut short: it ends at byte offset ${context.truncatedGzipAt} of the compressed file)`;
  const headerLength = 4 + 4 * ndim;
  const expectedMagic = 0x800 + ndim;
  const what = ndim === 3 ? 'uint8 images, 3 dimensions' : ndim === 1 ? 'uint8 labels, 1 dimension' : `uint8, ${ndim} dimensions`;
  if (bytes.length < 4) {
    throw malformed(file, bytes.length, `truncated: the file ends before its 4-byte magic number${where}${cut}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== expectedMagic) {
    const hint =
      bytes[0] !== 0 || bytes[1] !== 0
        ? 'not an IDX file'
        : bytes[2] !== UINT8
          ? `element type 0x${bytes[2]!.toString(16).padStart(2, '0')} is not 0x08 (uint8)`
          : `${bytes[3]} dimensions instead of ${ndim}`;
    throw malformed(file, 0, `bad magic number ${hex(magic)}${where}: expected ${hex(expectedMagic)} (${what}); ${hint}`);
  }
  if (bytes.length < headerLength) {
    throw malformed(file, bytes.length, `truncated: the file ends inside its ${headerLength}-byte header${where}${cut}`);
  }
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d);
    // A sample count of 0 is a valid (empty) file; an image with no rows or columns is not.
    if (size === 0 && d > 0) throw malformed(file, 4 + 4 * d, `dimension ${d} is 0${where}`);
    shape.push(size);
  }
  const dataLength = shape.reduce((a, b) => a * b, 1);
  const end = headerLength + dataLength;
  if (bytes.length < end) {
    throw malformed(
      file,
      bytes.length,
      `truncated: the header declares ${shape.join(' x ')} = ${dataLength} data bytes from byte offset ${headerLength}, ` +
        `so the data should end at byte offset ${end}, but it ends at byte offset ${bytes.length}${where}${cut}`,
    );
  }
  if (bytes.length > end) {
    throw malformed(
      file,
      end,
      `${bytes.length - end} bytes past the end of the data declared by the header (${shape.join(' x ')})${where}`,
    );
  }
  return { shape, data: bytes.subarray(headerLength, end) };
}

/** The whole length an IDX header declares (header included), or just the header's when the magic
 * is wrong (the parser then says so). */
function declaredLength(head: Uint8Array, ndim: number): number {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const headerLength = 4 + 4 * ndim;
  if (view.getUint32(0) !== 0x800 + ndim) return headerLength;
  let length = 1;
  for (let d = 0; d < ndim; d++) length *= view.getUint32(4 + 4 * d);
  return headerLength + length;
}

async function readIdx(file: string, ndim: number): Promise<IdxArray> {
  const headLength = 4 + 4 * ndim;
  const { bytes, gzip, truncatedGzipAt, inflatedPast } = await readMaybeGzip(file, { headLength, maxLength: (head) => declaredLength(head, ndim) });
  if (inflatedPast !== undefined && inflatedPast > headLength) {
    const shape = Array.from({ length: ndim }, (_, d) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(4 + 4 * d));
    throw malformed(file, inflatedPast, `the gzip stream decompresses past the ${inflatedPast} bytes its header declares (${shape.join(' x ')}); inflating stopped there`);
  }
  return parseIdx(bytes, file, ndim, truncatedGzipAt === undefined ? { decompressed: gzip } : { decompressed: gzip, truncatedGzipAt });
}

/** An IDX images file (magic 0x00000803), gzipped or not: shape [N, rows, cols]. */
export function readIdxImages(file: string): Promise<IdxArray> {
  return readIdx(file, 3);
}

/** An IDX labels file (magic 0x00000801), gzipped or not: shape [N]. */
export function readIdxLabels(file: string): Promise<IdxArray> {
  return readIdx(file, 1);
}
