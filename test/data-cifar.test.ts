// CIFAR-10 and CIFAR-100 binary files, generated here in the published layout: records of the
// label byte(s) and 3072 channel-planar pixels.
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CIFAR10, CIFAR100 } from '../lib/data/datasets.ts';
import { DataError } from '../lib/data/errors.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import { cifarBytes, patternByte, patternImage, tempDir } from './helpers/data-files.ts';

/** root/cifar-10-batches-bin with 2 records per training batch (labels k % 10) and 3 test records. */
async function cifar10Root(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const root = await tempDir(t);
  const dir = join(root, 'cifar-10-batches-bin');
  await mkdir(dir);
  for (let b = 1; b <= 5; b++) {
    const first = (b - 1) * 2;
    await writeFile(join(dir, `data_batch_${b}.bin`), cifarBytes([first % 10, (first + 1) % 10], first));
  }
  await writeFile(join(dir, 'test_batch.bin'), cifarBytes([3, 8, 8], 100));
  await writeFile(join(dir, 'batches.meta.txt'), `${CIFAR10.classes.join('\n')}\n\n`);
  return root;
}

test('CIFAR-10: the five training batches in order, labels, planar pixels, classes and statistics', async (t) => {
  const root = await cifar10Root(t);
  const train = await CIFAR10.load({ root, split: 'train' });
  t.is(train.length, 10);
  t.deepEqual(train.imageShape, [3, 32, 32]);
  t.deepEqual([...train.labels()], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (let k = 0; k < 10; k++) t.deepEqual([...train.get(k).image.data], [...patternImage(k, 3, 32, 32)]);
  // Channel-planar: green of row 5, column 7 of image 4 is byte 1024 + 5 * 32 + 7 of its record.
  t.is(train.get(4).image.data[1024 + 5 * 32 + 7], patternByte(4, 1, 5, 7));
  t.deepEqual(train.classes, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
  t.deepEqual(train.mean, [0.4914, 0.4822, 0.4465]);
  t.deepEqual(train.std, [0.247, 0.2435, 0.2616]);

  // root may also be the cifar-10-batches-bin folder itself.
  const testSplit = await CIFAR10.load({ root: join(root, 'cifar-10-batches-bin'), split: 'test' });
  t.deepEqual([...testSplit.labels()], [3, 8, 8]);
  t.deepEqual([...testSplit.get(2).image.data], [...patternImage(102, 3, 32, 32)]);
});

test('CIFAR-100: fine labels by default, coarse on request, 100 and 20 class names', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'cifar-100-binary');
  await mkdir(dir);
  await writeFile(join(dir, 'train.bin'), cifarBytes([[4, 30], [19, 99], [0, 0]]));
  await writeFile(join(dir, 'test.bin'), cifarBytes([[11, 42]], 7));
  const fine = await CIFAR100.load({ root });
  t.deepEqual([...fine.labels()], [30, 99, 0]);
  t.is(fine.classes.length, 100);
  t.is(fine.classes[30], 'dolphin');
  t.is(fine.classes[99], 'worm');
  t.deepEqual([...fine.get(1).image.data], [...patternImage(1, 3, 32, 32)]);
  t.deepEqual(fine.mean, [0.5071, 0.4865, 0.4409]);
  const coarse = await CIFAR100.load({ root, labels: 'coarse' });
  t.deepEqual([...coarse.labels()], [4, 19, 0]);
  t.is(coarse.classes.length, 20);
  t.is(coarse.classes[4], 'fruit_and_vegetables');
  const testSplit = await CIFAR100.load({ root: dir, split: 'test', labels: 'fine' });
  t.deepEqual([...testSplit.labels()], [42]);
  t.deepEqual([...testSplit.get(0).image.data], [...patternImage(7, 3, 32, 32)]);
});

test('a file that is not a whole number of records: DataError at the start of the partial record', async (t) => {
  const root = await cifar10Root(t);
  const file = join(root, 'cifar-10-batches-bin', 'data_batch_3.bin');
  await writeFile(file, cifarBytes([1, 2]).subarray(0, 3073 + 100));
  const error = await t.throwsAsync(CIFAR10.load({ root }), { instanceOf: DataError });
  t.is(
    error!.message,
    `Malformed data file '${file}' at byte offset 3073: 3173 bytes is not a whole number of 3073-byte CIFAR-10 records: record 1 starting here has only 100 bytes`,
  );
  t.is(error!.file, file);
  t.is(error!.offset, 3073);

  const dir100 = join(root, 'cifar-100-binary');
  await mkdir(dir100);
  await writeFile(join(dir100, 'train.bin'), cifarBytes([[1, 2]]).subarray(0, 3073));
  const error100 = await t.throwsAsync(CIFAR100.load({ root }), { instanceOf: DataError });
  t.is(
    error100!.message,
    `Malformed data file '${join(dir100, 'train.bin')}' at byte offset 0: 3073 bytes is not a whole number of 3074-byte CIFAR-100 records: record 0 starting here has only 3073 bytes`,
  );
});

test('out-of-range labels, missing files and bad options', async (t) => {
  const root = await cifar10Root(t);
  const file = join(root, 'cifar-10-batches-bin', 'test_batch.bin');
  await writeFile(file, cifarBytes([3, 10]));
  let error = await t.throwsAsync(CIFAR10.load({ root, split: 'test' }), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${file}' at byte offset 3073: label 10 of record 1 is not in 0..9`);

  const dir100 = join(root, 'cifar-100-binary');
  await mkdir(dir100);
  await writeFile(join(dir100, 'test.bin'), cifarBytes([[2, 3], [5, 100]]));
  error = await t.throwsAsync(CIFAR100.load({ root, split: 'test', labels: 'coarse' }), { instanceOf: DataError });
  t.is(error!.message, `Malformed data file '${join(dir100, 'test.bin')}' at byte offset 3075: fine label 100 of record 1 is not in 0..99`);

  error = await t.throwsAsync(CIFAR100.load({ root, split: 'train' }), { instanceOf: DataError });
  t.is(error!.message, `Cannot read data file '${join(dir100, 'train.bin')}': ENOENT`);
  error = await t.throwsAsync(CIFAR10.load({ root: join(root, 'nowhere') }), { instanceOf: DataError });
  t.is(error!.message, `Cannot find the CIFAR-10 folder '${join(root, 'nowhere')}'`);

  await t.throwsAsync(CIFAR100.load({ root, labels: 'medium' as 'fine' }), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'fine', 'coarse' for labels but received 'medium' of type string",
  });
  await t.throwsAsync(CIFAR10.load({ root, labels: 'fine' } as { root: string }), {
    instanceOf: InvalidArgumentError,
    message: "Unknown option 'labels' for CIFAR10.load; expected one of: root, split",
  });
});
