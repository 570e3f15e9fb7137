// ImageDataset and its batches: shapes and dtypes, PyTorch-exact normalisation, seeded shuffling,
// dropLast, subsets, the three augmentations and determinism.
import test from 'ava';
import { ImageDataset } from '../lib/data/dataset.ts';
import { InvalidArgumentError, ShapeError } from '../lib/errors.ts';
import { BatchIterator, type Batch } from '../lib/data/batch-iterator.ts';
import { resolveBatchOptions, type BatchOptions } from '../lib/data/batch-options.ts';
import { ResNetError } from '../lib/errors.ts';
import { patternDataset, patternImage } from './helpers/data-files.ts';

async function collect(it: BatchIterator): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of it) out.push(batch);
  return out;
}

const concatIndices = (batches: Batch[]) => batches.flatMap((b) => [...b.indices]);
const sameBytes = (a: Batch[], b: Batch[]) =>
  a.length === b.length && a.every((x, i) => Buffer.from(x.images.data.buffer).equals(Buffer.from(b[i]!.images.data.buffer)));

/** One image per batch (batchSize 1) as arrays of bytes recovered from mean 0 / std 1 values. */
async function outputs(ds: ImageDataset, options: Omit<BatchOptions, 'batchSize'>): Promise<Float32Array[]> {
  const batches = await collect(ds.batches({ batchSize: 50, normalize: { mean: [0], std: [1] }, ...options }));
  const size = ds.imageShape[0] * ds.imageShape[1] * ds.imageShape[2];
  return batches.flatMap((b) => Array.from({ length: b.indices.length }, (_, j) => b.images.data.subarray(j * size, (j + 1) * size)));
}

/** n copies of one 1 x 8 x 8 image whose pixels are 1 + 8y + x: every value says where it came from. */
function gridDataset(n: number): ImageDataset {
  const image = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
  const pixels = new Uint8Array(n * 64);
  for (let k = 0; k < n; k++) pixels.set(image, k * 64);
  return new ImageDataset({ pixels, shape: [n, 1, 8, 8], labels: new Array(n).fill(0), classes: ['grid'], mean: [0], std: [1] });
}

test('shapes, dtypes, labels and indices; the last batch is smaller unless dropLast', async (t) => {
  const ds = patternDataset(10, [3, 4, 5]);
  const batches = await collect(ds.batches({ batchSize: 4 }));
  t.deepEqual(batches.map((b) => b.images.shape), [[4, 3, 4, 5], [4, 3, 4, 5], [2, 3, 4, 5]]);
  for (const b of batches) {
    t.is(b.images.dtype, 'float32');
    t.true(b.images.data instanceof Float32Array);
    t.is(b.labels.dtype, 'int64');
    t.true(b.labels.data instanceof BigInt64Array);
    t.deepEqual([...b.labels.data], [...b.indices].map((i) => BigInt(i % 3)));
  }
  t.deepEqual(concatIndices(batches), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

  const dropped = ds.batches({ batchSize: 3, dropLast: true });
  t.is(dropped.numBatches, 3);
  t.deepEqual((await collect(dropped)).map((b) => b.indices.length), [3, 3, 3]);
  t.deepEqual((await collect(ds.batches({ batchSize: 3 }))).map((b) => b.indices.length), [3, 3, 3, 1]);
  t.deepEqual(await collect(ds.batches({ batchSize: 11, dropLast: true })), []);
});

test('normalisation is bit-exact with torchvision ToTensor + Normalize (values from PyTorch)', async (t) => {
  const gray = new ImageDataset({ pixels: Uint8Array.of(200, 0, 255, 37), shape: [1, 1, 1, 4], labels: [0], classes: ['x'], mean: [0.286], std: [0.353] });
  const [g] = await collect(gray.batches({ batchSize: 1 }));
  t.deepEqual([...g!.images.data], [1.4116536378860474, -0.8101983666419983, 2.022662878036499, -0.39915573596954346]);

  const rgb = new ImageDataset({ pixels: Uint8Array.of(200, 100, 13), shape: [1, 3, 1, 1], labels: [0], classes: ['x'], mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
  const [c] = await collect(rgb.batches({ batchSize: 1 }));
  t.deepEqual([...c!.images.data], [1.1858855485916138, -0.36978697776794434, -1.511925220489502]);

  // normalize overrides the dataset's statistics.
  const [plain] = await collect(gray.batches({ batchSize: 1, normalize: { mean: [0], std: [1] } }));
  t.deepEqual([...plain!.images.data], [200, 0, 255, 37].map((p) => Math.fround(p / 255)));
});

test('shuffle: a permutation, the same for a seed and epoch, another for the next epoch', async (t) => {
  const ds = patternDataset(100, [1, 2, 2]);
  const order = async (seed: number, epoch: number) => concatIndices(await collect(ds.batches({ batchSize: 16, shuffle: true, seed, epoch })));
  const a = await order(7, 0);
  t.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  t.notDeepEqual(a, Array.from({ length: 100 }, (_, i) => i));
  t.deepEqual(await order(7, 0), a);
  const b = await order(7, 1);
  t.notDeepEqual(b, a);
  t.deepEqual([...b].sort((x, y) => x - y), [...a].sort((x, y) => x - y));
  t.notDeepEqual(await order(8, 0), a);

  // Each image and label travel with their index.
  const [first] = await collect(ds.batches({ batchSize: 5, shuffle: true, seed: 3, normalize: { mean: [0], std: [1] } }));
  first!.indices.forEach((index, j) => {
    t.is(first!.labels.data[j], BigInt(index % 3));
    t.deepEqual([...first!.images.data.subarray(j * 4, j * 4 + 4)], [...patternImage(index, 1, 2, 2)].map((p) => Math.fround(p / 255)));
  });
  // An unseeded iterator picks a seed and reports it.
  const it = ds.batches({ batchSize: 10, shuffle: true });
  t.deepEqual(concatIndices(await collect(it)), await order(it.seed, 0));
});

test('subset: shares the pixels, indexes its own positions, nests', async (t) => {
  const ds = patternDataset(12, [1, 3, 3]);
  const sub = ds.subset([5, 2, 2, 9]);
  t.is(sub.length, 4);
  t.deepEqual([...sub.labels()], [2, 2, 2, 0]);
  t.deepEqual([...sub.get(3).image.data], [...patternImage(9, 1, 3, 3)]);
  const batches = await collect(sub.batches({ batchSize: 3, normalize: { mean: [0], std: [1] } }));
  t.deepEqual(concatIndices(batches), [0, 1, 2, 3]);
  t.deepEqual([...batches[1]!.images.data], [...patternImage(9, 1, 3, 3)].map((p) => Math.fround(p / 255)));
  const nested = sub.subset(new Set([3, 0]));
  t.deepEqual([...nested.get(0).image.data], [...patternImage(9, 1, 3, 3)]);
  t.deepEqual([...nested.get(1).image.data], [...patternImage(5, 1, 3, 3)]);
  t.throws(() => sub.subset([4]), { instanceOf: InvalidArgumentError, message: 'Expected integer in [0, 4) for indices[0] but received 4 of type number' });
});

test('crop with padding: each image is the original shifted by at most the padding, zeros come in at the borders', async (t) => {
  const images = await outputs(gridDataset(400), { augment: { crop: { padding: 2 } }, seed: 1 });
  const shifts = new Set<string>();
  for (const out of images) {
    const bytes = [...out].map((v) => Math.round(v * 255));
    const at = bytes.findIndex((p) => p > 0);
    const [dy, dx] = [Math.floor((bytes[at]! - 1) / 8) - Math.floor(at / 8), ((bytes[at]! - 1) % 8) - (at % 8)];
    t.true(Math.abs(dy) <= 2 && Math.abs(dx) <= 2, `shift ${dy}, ${dx}`);
    shifts.add(`${dy},${dx}`);
    const expected = Array.from({ length: 64 }, (_, i) => {
      const [y, x] = [Math.floor(i / 8) + dy, (i % 8) + dx];
      return y >= 0 && y < 8 && x >= 0 && x < 8 ? 1 + 8 * y + x : 0;
    });
    if (bytes.some((p, i) => p !== expected[i])) t.fail(`not a shifted copy: ${bytes}`);
  }
  t.is(shifts.size, 25, 'every window position of a 12 x 12 padded image occurs');
});

test('hflip mirrors about half the images; with crop it mirrors the cropped window', async (t) => {
  const mirrored = (p: number) => 1 + 8 * Math.floor((p - 1) / 8) + (7 - ((p - 1) % 8));
  const flips = await outputs(gridDataset(400), { augment: { hflip: true }, seed: 2 });
  let flipped = 0;
  for (const out of flips) {
    const bytes = [...out].map((v) => Math.round(v * 255));
    if (bytes.every((p, i) => p === i + 1)) continue;
    t.deepEqual(bytes, Array.from({ length: 64 }, (_, i) => mirrored(i + 1)));
    flipped++;
  }
  t.true(flipped > 150 && flipped < 250, `${flipped} of 400 flipped`);

  const both = await outputs(gridDataset(200), { augment: { crop: { padding: 1 }, hflip: true }, seed: 3 });
  let mirroredCrops = 0;
  for (const out of both) {
    const bytes = [...out].map((v) => Math.round(v * 255));
    // Row 3 is inside the image whatever the crop; its values run right-to-left when mirrored.
    const row = bytes.slice(24, 32).filter((p) => p > 0);
    const decreasing = row.every((p, i) => i === 0 || p === row[i - 1]! - 1);
    const increasing = row.every((p, i) => i === 0 || p === row[i - 1]! + 1);
    t.true(decreasing !== increasing, `row ${row}`);
    if (decreasing) mirroredCrops++;
  }
  t.true(mirroredCrops > 60 && mirroredCrops < 140, `${mirroredCrops} of 200 mirrored`);
});

/** The erased rectangle of an image (every channel), or null; checks it is one solid rectangle. */
function erasedRect(image: Float32Array, isErased: (v: number) => boolean, c: number, h: number, w: number): [number, number] | null {
  let top = h, left = w, bottom = -1, right = -1, count = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (!isErased(image[y * w + x]!)) continue;
    count++;
    [top, left, bottom, right] = [Math.min(top, y), Math.min(left, x), Math.max(bottom, y), Math.max(right, x)];
  }
  if (count === 0) return null;
  const [rh, rw] = [bottom - top + 1, right - left + 1];
  if (count !== rh * rw) throw new Error('erased pixels are not a rectangle');
  for (let ch = 1; ch < c; ch++) for (let y = top; y <= bottom; y++) for (let x = left; x <= right; x++) {
    if (!isErased(image[ch * h * w + y * w + x]!)) throw new Error('not erased in every channel');
  }
  return [rh, rw];
}

test('random erasing: probability, area within scale, aspect within ratio, value after normalisation', async (t) => {
  const ds = patternDataset(1000, [3, 28, 28], 3, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  const size = 3 * 28 * 28;
  const run = async (erasing: object) => {
    const batches = await collect(ds.batches({ batchSize: 100, seed: 11, augment: { randomErasing: erasing } }));
    return batches.flatMap((b) => Array.from({ length: 100 }, (_, j) => b.images.data.subarray(j * size, (j + 1) * size)));
  };
  // Value 0 after Normalize(0.5, 0.5) is no pixel value ((p / 255 - 0.5) / 0.5 = 0 needs p = 127.5).
  const rects = (await run({ p: 0.5 })).map((img) => erasedRect(img, (v) => v === 0, 3, 28, 28));
  const erased = rects.filter((r) => r !== null) as [number, number][];
  t.true(erased.length > 420 && erased.length < 580, `${erased.length} of 1000 erased`);
  for (const [h, w] of erased) {
    // h = round(sqrt(area * r)), w = round(sqrt(area / r)) with area in [0.02, 0.33] * 784, r in [0.3, 3.3]
    t.true((h - 0.5) * (w - 0.5) <= 0.33 * 784 && (h + 0.5) * (w + 0.5) >= 0.02 * 784, `${h} x ${w}`);
    t.true((h - 0.5) / (w + 0.5) <= 3.3 && (h + 0.5) / (w - 0.5) >= 0.3, `${h} x ${w}`);
    t.true(h < 28 && w < 28);
  }
  const all = (await run({ p: 1, scale: [0.1, 0.1], ratio: [1, 1], value: -7 })).map((img) => erasedRect(img, (v) => v === -7, 3, 28, 28));
  t.true(all.every((r) => r !== null && r[0] === 9 && r[1] === 9), 'round(sqrt(78.4)) = 9: every image gets a 9 x 9 square');
  t.true((await run({ p: 0 })).every((img) => erasedRect(img, (v) => v === 0, 3, 28, 28) === null));

  // 'random': standard normal noise in the rectangle.
  const noisy = await run({ p: 1, scale: [0.3, 0.3], ratio: [1, 1], value: 'random' });
  const original = (await run({ p: 0 }))[0]!;
  const changed = [...noisy[0]!].filter((v, i) => v !== original[i]);
  t.is(changed.length, 3 * 15 * 15); // round(sqrt(0.3 * 784)) = 15
  const mean = changed.reduce((a, b) => a + b, 0) / changed.length;
  const sd = Math.sqrt(changed.reduce((a, b) => a + (b - mean) ** 2, 0) / changed.length);
  t.true(Math.abs(mean) < 0.2 && Math.abs(sd - 1) < 0.2, `mean ${mean}, sd ${sd}`);
});

test('determinism: same seed and epoch, same batches whatever the prefetch; not so for another epoch', async (t) => {
  const ds = patternDataset(300, [3, 8, 8]);
  const options = { batchSize: 32, shuffle: true, augment: { crop: { padding: 2 }, hflip: true, randomErasing: { value: 'random' as const } } };
  const a = await collect(ds.batches({ ...options, seed: 5, epoch: 3, prefetch: 0 }));
  const b = await collect(ds.batches({ ...options, seed: 5, epoch: 3, prefetch: 6 }));
  t.true(sameBytes(a, b));
  t.deepEqual(concatIndices(a), concatIndices(b));
  t.false(sameBytes(a, await collect(ds.batches({ ...options, seed: 5, epoch: 4 }))));
  t.false(sameBytes(a, await collect(ds.batches({ ...options, seed: 6, epoch: 3 }))));
  // Without shuffling the order is fixed, but the augmentation still changes with the epoch.
  const fixed = { batchSize: 32, augment: { hflip: true } };
  const e0 = await collect(ds.batches({ ...fixed, seed: 1, epoch: 0 }));
  const e1 = await collect(ds.batches({ ...fixed, seed: 1, epoch: 1 }));
  t.deepEqual(concatIndices(e0), concatIndices(e1));
  t.false(sameBytes(e0, e1));
});

test('next() may be called again before it settles: batches still come in order', async (t) => {
  const it = patternDataset(10, [1, 2, 2]).batches({ batchSize: 3 });
  const results = await Promise.all([it.next(), it.next(), it.next(), it.next(), it.next()]);
  t.deepEqual(results.map((r) => (r.done ? 'done' : [...r.value.indices].join())), ['0,1,2', '3,4,5', '6,7,8', '9', 'done']);
});

test('a batch that fails in the worker rejects next() with the worker error and ends the worker', async (t) => {
  // A source whose labels stop short: the worker's BigInt(labels[i]) throws for image 2.
  const source = { pixels: new Uint8Array(new SharedArrayBuffer(4 * 4)), labels: new Int32Array(new SharedArrayBuffer(2 * 4)), positions: null, channels: 1, height: 2, width: 2, length: 4 };
  const it = new BatchIterator(source, resolveBatchOptions({ batchSize: 2 }, { channels: 1, mean: [0], std: [1] }));
  t.deepEqual([...(await it.next()).value!.indices], [0, 1]);
  const error = await t.throwsAsync(it.next(), { instanceOf: ResNetError });
  t.is(error!.message, 'Building batch 1 failed in the batch worker: TypeError: Cannot convert undefined to a BigInt');
  t.regex((error!.cause as Error).stack!, /batch-worker\.js/);
  t.false(it.running);
  t.deepEqual(await it.next(), { done: true, value: undefined });
});

test('option and constructor validation', (t) => {
  const ds = patternDataset(4, [1, 2, 2]);
  const bad = (options: unknown, message: string) =>
    t.throws(() => ds.batches(options as BatchOptions), { instanceOf: InvalidArgumentError, message });
  bad({ batchSize: 1.5 }, 'Expected positive integer for batchSize but received 1.5 of type number');
  bad({}, 'Expected positive integer for batchSize but received undefined of type undefined');
  bad({ batchSize: 2, shufle: true }, "Unknown option 'shufle' for batches; expected one of: batchSize, shuffle, seed, epoch, dropLast, indices, shard, normalize, augment, prefetch");
  bad({ batchSize: 2, seed: -1 }, 'Expected non-negative integer for seed but received -1 of type number');
  bad({ batchSize: 2, normalize: { mean: [0, 0], std: [1] } }, 'Expected an array of 1 finite numbers for normalize.mean but received [ 0, 0 ] of type object');
  bad({ batchSize: 2, normalize: { mean: [0], std: [0] } }, 'Expected an array of 1 finite numbers > 0 for normalize.std but received [ 0 ] of type object');
  bad({ batchSize: 2, augment: { crop: { padding: -1 } } }, 'Expected non-negative integer for augment.crop.padding but received -1 of type number');
  bad({ batchSize: 2, augment: { randomErasing: { p: 2 } } }, 'Expected number between 0 and 1 for augment.randomErasing.p but received 2 of type number');
  bad({ batchSize: 2, augment: { randomErasing: { scale: [0.5, 0.1] } } }, 'Expected [low, high] with low <= high, both in [0, 1] for augment.randomErasing.scale but received [ 0.5, 0.1 ] of type object');
  bad({ batchSize: 2, augment: { vflip: true } }, "Unknown option 'vflip' for augment; expected one of: crop, hflip, randomErasing");
  bad({ batchSize: 2, prefetch: -1 }, 'Expected non-negative integer for prefetch but received -1 of type number');

  t.throws(() => new ImageDataset({ pixels: new Uint8Array(7), shape: [2, 1, 2, 2], labels: [0, 0], classes: ['a'] }), {
    instanceOf: ShapeError,
    message: 'Expected 8 pixel bytes for shape [2, 1, 2, 2] but received 7',
  });
  t.throws(() => new ImageDataset({ pixels: new Uint8Array(8), shape: [2, 1, 2, 2], labels: [0, 1], classes: ['a'] }), {
    instanceOf: InvalidArgumentError,
    message: 'Expected labels in [0, 1) but label 1 is 1',
  });
  t.throws(() => ds.get(4), { instanceOf: InvalidArgumentError, message: 'Expected integer in [0, 4) for index but received 4 of type number' });

  // Pixels not on a SharedArrayBuffer are copied into one: later changes to the caller's array do not show.
  const pixels = Uint8Array.of(1, 2, 3, 4);
  const own = new ImageDataset({ pixels, shape: [1, 1, 2, 2], labels: [0], classes: ['a'] });
  pixels[0] = 99;
  t.is(own.get(0).image.data[0], 1);
  t.deepEqual(own.mean, [2.5 / 255]);
});
