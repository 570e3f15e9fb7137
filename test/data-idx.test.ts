// IDX reader and the MNIST-style loaders: Debian's real Fashion-MNIST files, generated files
// (plain and gzipped), and malformed ones, whose errors must name the file and the byte offset.
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FashionMNIST, MNIST } from '../lib/data/datasets.ts';
import { DataError } from '../lib/data/errors.ts';
import { readIdxImages, readIdxLabels } from '../lib/data/idx.ts';
import { InvalidArgumentError, ResNetError } from '../lib/errors.ts';
import { fashionRoot, idxBytes, tempDir, writeIdx } from './helpers/data-files.ts';

function histogram(labels: ArrayLike<number>): number[] {
  const counts = new Array(10).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]++;
  return counts;
}

test('the real Fashion-MNIST training files: 60000 x 28 x 28, labels 0..9, 6000 of each', async (t) => {
  const images = await readIdxImages(join(fashionRoot, 'train-images-idx3-ubyte.gz'));
  const labels = await readIdxLabels(join(fashionRoot, 'train-labels-idx1-ubyte.gz'));
  t.deepEqual(images.shape, [60000, 28, 28]);
  t.is(images.data.length, 60000 * 28 * 28);
  t.deepEqual(labels.shape, [60000]);
  t.deepEqual(histogram(labels.data), new Array(10).fill(6000));
  // The first training image is an ankle boot (label 9) with a black border.
  t.is(labels.data[0], 9);
  t.is(images.data[0], 0);
  t.true(images.data.subarray(0, 784).some((p) => p > 200));
});

test('FashionMNIST.load: both splits, classes, default normalisation', async (t) => {
  const train = await FashionMNIST.load({ split: 'train' });
  t.is(train.length, 60000);
  t.deepEqual(train.imageShape, [1, 28, 28]);
  t.deepEqual(train.mean, [0.286]);
  t.deepEqual(train.std, [0.353]);
  t.deepEqual(train.classes, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
  t.is(train.classToIdx['Ankle boot'], 9);
  t.deepEqual(histogram(train.labels()), new Array(10).fill(6000));
  const first = train.get(0);
  t.is(first.label, 9);
  t.deepEqual(first.image.shape, [1, 28, 28]);
  t.is(first.image.dtype, 'uint8');

  const testSplit = await FashionMNIST.load({ split: 'test', root: fashionRoot });
  t.is(testSplit.length, 10000);
  t.deepEqual(histogram(testSplit.labels()), new Array(10).fill(1000));
});

test('generated IDX files, gzipped and plain, read back exactly', async (t) => {
  const dir = await tempDir(t);
  const data = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 7) & 255);
  for (const gzip of [false, true]) {
    const file = join(dir, `images-${gzip}`);
    await writeIdx(file, [3, 4, 5], data, gzip);
    const images = await readIdxImages(file);
    t.deepEqual(images.shape, [3, 4, 5]);
    t.deepEqual([...images.data], [...data]);
    await writeIdx(`${file}-labels`, [3], Uint8Array.of(2, 0, 1), gzip);
    t.deepEqual([...(await readIdxLabels(`${file}-labels`)).data], [2, 0, 1]);
  }
});

test('MNIST.load finds plain or .gz files in root, root/raw or root/MNIST/raw', async (t) => {
  const root = await tempDir(t);
  const raw = join(root, 'MNIST', 'raw');
  await mkdir(raw, { recursive: true });
  const pixels = Uint8Array.from({ length: 4 * 28 * 28 }, (_, i) => i & 255);
  await writeIdx(join(raw, 't10k-images-idx3-ubyte'), [4, 28, 28], pixels);
  await writeIdx(join(raw, 't10k-labels-idx1-ubyte.gz'), [4], Uint8Array.of(7, 2, 1, 0), true);
  const ds = await MNIST.load({ root, split: 'test' });
  t.is(ds.length, 4);
  t.deepEqual([...ds.labels()], [7, 2, 1, 0]);
  t.deepEqual([...ds.get(1).image.data], [...pixels.subarray(784, 1568)]);
  t.deepEqual(ds.mean, [0.1307]);
  t.deepEqual(ds.std, [0.3081]);
  t.is(ds.classes[7], '7 - seven');
  const missing = await t.throwsAsync(MNIST.load({ root, split: 'train' }), { instanceOf: DataError });
  t.regex(missing!.message, /Cannot find the MNIST train file 'train-images-idx3-ubyte'/);
});

test('malformed IDX files: errors name the file and the byte offset', async (t) => {
  const dir = await tempDir(t);
  const write = async (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return path;
  };
  const good = idxBytes([2, 3, 3], new Uint8Array(18));

  const badMagic = await write('bad-magic', Buffer.concat([Buffer.from([0x12, 0x34, 0x56, 0x78]), good.subarray(4)]));
  let error = await t.throwsAsync(readIdxImages(badMagic), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${badMagic}' at byte offset 0: bad magic number 0x12345678: expected 0x00000803 (uint8 images, 3 dimensions); not an IDX file`);
  t.is(error!.code, 'ERR_RESNET_DATA');
  t.true(error instanceof ResNetError);
  t.is(error!.file, badMagic);
  t.is(error!.offset, 0);

  // A labels file given where images are expected: the magic's dimension byte says so.
  const labels = await write('labels', idxBytes([5], new Uint8Array(5)));
  error = await t.throwsAsync(readIdxImages(labels), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${labels}' at byte offset 0: bad magic number 0x00000801: expected 0x00000803 (uint8 images, 3 dimensions); 1 dimensions instead of 3`);

  const floats = await write('floats', Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 0]));
  error = await t.throwsAsync(readIdxLabels(floats), { instanceOf: DataError });
  t.regex(error!.message, /byte offset 0: bad magic number 0x00000d01: .*element type 0x0d is not 0x08 \(uint8\)$/);

  const truncated = await write('truncated', good.subarray(0, good.length - 5));
  error = await t.throwsAsync(readIdxImages(truncated), { instanceOf: DataError });
  t.is(
    error!.message,
    `Malformed data file '${truncated}' at byte offset 29: truncated: the header declares 2 x 3 x 3 = 18 data bytes from byte offset 16, so the data should end at byte offset 34, but it ends at byte offset 29`,
  );
  t.is(error!.offset, 29);

  const shortHeader = await write('short-header', good.subarray(0, 10));
  error = await t.throwsAsync(readIdxImages(shortHeader), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${shortHeader}' at byte offset 10: truncated: the file ends inside its 16-byte header`);

  const empty = await write('empty', new Uint8Array(0));
  error = await t.throwsAsync(readIdxLabels(empty), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${empty}' at byte offset 0: truncated: the file ends before its 4-byte magic number`);

  const trailing = await write('trailing', Buffer.concat([good, Buffer.from([1, 2, 3])]));
  error = await t.throwsAsync(readIdxImages(trailing), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${trailing}' at byte offset 34: 3 bytes past the end of the data declared by the header (2 x 3 x 3)`);

  const zeroRows = await write('zero-rows', idxBytes([2, 0, 3], new Uint8Array(0)));
  error = await t.throwsAsync(readIdxImages(zeroRows), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${zeroRows}' at byte offset 8: dimension 1 is 0`);
});

test('a truncated or corrupt gzip stream: offsets in the decompressed data, and where the stream stops', async (t) => {
  const dir = await tempDir(t);
  const data = Uint8Array.from({ length: 50 * 28 * 28 }, (_, i) => (i * 13) & 255);
  const gz = gzipSync(idxBytes([50, 28, 28], data));
  const cut = join(dir, 'cut.gz');
  await writeFile(cut, gz.subarray(0, gz.length - 200));
  const error = await t.throwsAsync(readIdxImages(cut), { instanceOf: DataError });
  t.regex(
    error!.message,
    new RegExp(
      `^Malformed data file '${cut}' at byte offset (\\d+): truncated: the header declares 50 x 28 x 28 = 39200 data bytes from byte offset 16, ` +
        `so the data should end at byte offset 39216, but it ends at byte offset \\1 of the decompressed data ` +
        `\\(the gzip stream is cut short: it ends at byte offset ${gz.length - 200} of the compressed file\\)$`,
    ),
  );
  t.true(error!.offset! < 39216);

  const corrupt = join(dir, 'corrupt.gz');
  const bytes = Buffer.from(gz);
  bytes.fill(0xff, 20, 60);
  await writeFile(corrupt, bytes);
  const bad = await t.throwsAsync(readIdxImages(corrupt), { instanceOf: DataError });
  t.regex(bad!.message, new RegExp(`^Malformed data file '${corrupt}': corrupt gzip stream \\(.+\\)$`));
});

test('loader-level checks: image and label counts, label range, options', async (t) => {
  const root = await tempDir(t);
  await writeIdx(join(root, 'train-images-idx3-ubyte'), [3, 2, 2], new Uint8Array(12));
  await writeIdx(join(root, 'train-labels-idx1-ubyte'), [2], Uint8Array.of(1, 2));
  let error = await t.throwsAsync(MNIST.load({ root }), { instanceOf: DataError });
  t.is(error!.message, `'${join(root, 'train-images-idx3-ubyte')}' holds 3 images but '${join(root, 'train-labels-idx1-ubyte')}' holds 2 labels`);

  await writeIdx(join(root, 'train-labels-idx1-ubyte'), [3], Uint8Array.of(1, 12, 2));
  error = await t.throwsAsync(MNIST.load({ root }), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${join(root, 'train-labels-idx1-ubyte')}' at byte offset 9: label 12 of image 1 is not in 0..9`);

  await t.throwsAsync(FashionMNIST.load({ split: 'val' as 'test' }), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'train', 'test' for split but received 'val' of type string",
  });
  await t.throwsAsync(FashionMNIST.load({ spilt: 'test' } as object), {
    instanceOf: InvalidArgumentError,
    message: 'Unknown option \'spilt\' for FashionMNIST.load; expected one of: split, root',
  });
  await t.throwsAsync(MNIST.load({} as { root: string }), {
    instanceOf: InvalidArgumentError,
    message: 'Expected a folder path for root but received undefined of type undefined',
  });
});

// Hardening: a small gzip that inflates far past what its header declares (a decompression bomb)
// is stopped at the declared size instead of being inflated whole into memory.
test('a gzipped IDX file that inflates past its header\'s size stops there with a DataError', async (t) => {
  const dir = await tempDir(t);
  const declared = idxBytes([10, 28, 28], new Uint8Array(10 * 28 * 28));
  const bomb = join(dir, 'bomb.gz');
  const zeros = gzipSync(Buffer.concat([declared, Buffer.alloc(256 * 1024 * 1024)]), { level: 9 });
  await writeFile(bomb, zeros);
  t.true(zeros.length < 1024 * 1024, `${zeros.length} compressed bytes`);
  const error = await t.throwsAsync(readIdxImages(bomb), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${bomb}' at byte offset 7856: the gzip stream decompresses past the 7856 bytes its header declares (10 x 28 x 28); inflating stopped there`);
  t.is(error!.offset, 7856);

  // A wrong magic number is still named as such, and a file of the declared size still reads.
  const wrong = join(dir, 'wrong.gz');
  await writeFile(wrong, gzipSync(Buffer.concat([Buffer.from([0, 0, 8, 1]), Buffer.alloc(100_000)])));
  await t.throwsAsync(readIdxImages(wrong), { instanceOf: DataError, message: /bad magic number 0x00000801 of the decompressed data/ });
  const exact = join(dir, 'exact.gz');
  await writeFile(exact, gzipSync(declared));
  t.deepEqual((await readIdxImages(exact)).shape, [10, 28, 28]);
});
