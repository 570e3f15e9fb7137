// StreamingDataset: images decoded per batch by worker threads, from an ImageFolder or WebDataset
// tar shards. Seeded order and crops, eval tensors equal to preprocess(), a shard set equal image
// for image to the same folder, bad data as DataErrors (or skipped and counted), and fit() on it.
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { create as createTar } from 'tar';
import { createResNet, DataError, fit, InvalidArgumentError, preprocess } from '../lib/index.ts';
import { DistributedSampler } from '../lib/data/distributed-sampler.ts';
import { native } from '../lib/native.ts';
import { shardLength, StreamingDataset, T } from '../lib/stream/index.ts';

let root: string;
const classes = ['ash', 'birch', 'cedar'];
const mean = [0.4, 0.45, 0.5];
const std = [0.25, 0.25, 0.25];
const evalTransforms = () => [T.Resize(40), T.CenterCrop(32), T.Normalize(mean, std)];
const trainTransforms = () => [T.RandomResizedCrop(32), T.RandomHorizontalFlip(), T.Normalize(mean, std)];
const files: Array<{ path: string; label: number; key: string }> = [];

async function picture(seed: number, label: number): Promise<Buffer> {
  const width = 48 + ((seed * 13) % 40);
  const height = 40 + ((seed * 7) % 40);
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * (label + 3) + seed * 31 + ((i / 3 / width) | 0) * 5) % 256;
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'resnet-stream-'));
  const shardDir = join(root, 'shards');
  await mkdir(shardDir);
  let seed = 0;
  for (const [label, name] of classes.entries()) {
    await mkdir(join(root, 'folder', name), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const key = `${String(seed).padStart(4, '0')}`;
      const bytes = await picture(seed++, label);
      const path = join(root, 'folder', name, `${key}.jpg`);
      await writeFile(path, bytes);
      await writeFile(join(shardDir, `${key}.jpg`), bytes);
      await writeFile(join(shardDir, `${key}.cls`), String(label));
      files.push({ path, label, key });
    }
  }
  // Two shards in folder order: 0000-0011 and 0012-0023.
  const members = files.flatMap((f) => [`${f.key}.jpg`, `${f.key}.cls`]);
  await createTar({ file: join(root, 'a.tar'), cwd: shardDir, portable: true }, members.slice(0, 24));
  await createTar({ file: join(root, 'b.tar'), cwd: shardDir, portable: true }, members.slice(24));
});

test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function collect(data: StreamingDataset, options: Parameters<StreamingDataset['batches']>[0]) {
  const images: Buffer[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  const it = data.batches(options);
  for await (const batch of it) {
    images.push(Buffer.from(bytes(batch.images.data)));
    labels.push(...Array.from(batch.labels.data, Number));
    indices.push(...batch.indices);
  }
  return { images: Buffer.concat(images), labels, indices, stats: it.stats() };
}

test('eval transforms: each image equals preprocess() (Resize + CenterCrop + Normalize), in folder order', async (t) => {
  // The JPEG fast path (when the addon has it) resizes with Pillow's arithmetic: preprocess()'s
  // resampler 'pillow'; sharp's path is preprocess()'s default.
  const resampler = native.jpegDecoderCompiled() ? 'pillow' : 'sharp';
  const data = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: evalTransforms(), workers: 2 });
  t.teardown(() => data.close());
  t.deepEqual(data.classes, classes);
  t.is(data.length, 24);
  t.deepEqual(data.imageShape, [3, 32, 32]);
  const got = await collect(data, { batchSize: 5 });
  t.deepEqual(got.labels, files.map((f) => f.label));
  t.deepEqual(got.indices, files.map((_, i) => i));
  const expected = await Promise.all(files.map((f) => preprocess(f.path, { resize: 40, crop: 32, mean: mean as never, std: std as never, resampler })));
  t.true(got.images.equals(Buffer.concat(expected.map((x) => bytes(x.data)))));
  t.is(got.stats.images, 24);
});

test('seeded: the same seed and epoch give the same order and crops; another epoch does not', async (t) => {
  const data = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: trainTransforms(), workers: 2 });
  t.teardown(() => data.close());
  const a = await collect(data, { batchSize: 8, shuffle: true, seed: 3, epoch: 1 });
  const b = await collect(data, { batchSize: 8, shuffle: true, seed: 3, epoch: 1 });
  const c = await collect(data, { batchSize: 8, shuffle: true, seed: 3, epoch: 2 });
  t.true(a.images.equals(b.images));
  t.deepEqual(a.indices, b.indices);
  t.notDeepEqual(a.indices, c.indices);
  t.deepEqual([...a.indices].sort((x, y) => x - y), files.map((_, i) => i));
  // Labels travel with their images.
  a.indices.forEach((index, k) => t.is(a.labels[k], files[index]!.label));
  // A different worker count decodes the same crops (randomness is per sample, not per thread).
  const one = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: trainTransforms(), workers: 1 });
  t.teardown(() => one.close());
  t.true((await collect(one, { batchSize: 8, shuffle: true, seed: 3, epoch: 1 })).images.equals(a.images));
});

test('a WebDataset shard set gives the folder\'s images, labels and tensors, image for image', async (t) => {
  const shards = await StreamingDataset.fromWebDataset([join(root, 'a.tar'), join(root, 'b.tar')], { transforms: evalTransforms(), classes, workers: 2 });
  const folder = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: evalTransforms(), workers: 2 });
  t.teardown(() => (shards.close(), folder.close()));
  t.is(shards.length, 24);
  t.deepEqual(shards.classes, classes);
  const [s, f] = [await collect(shards, { batchSize: 7 }), await collect(folder, { batchSize: 7 })];
  t.deepEqual(s.labels, f.labels);
  t.true(s.images.equals(f.images));
  // Shuffled epochs read whole shards in a seeded shard order.
  const shuffled = await collect(shards, { batchSize: 24, shuffle: true, seed: 0, epoch: 0 });
  const firstShard = shuffled.indices.slice(0, 12);
  t.true(firstShard.every((i) => i < 12) || firstShard.every((i) => i >= 12));
});

/** Image k of a collected epoch (3 x 32 x 32 floats). */
const imageAt = (images: Buffer, k: number) => images.subarray(k * 3 * 32 * 32 * 4, (k + 1) * 3 * 32 * 32 * 4);

test('indices on a folder: exactly those samples in that order, each with the crop its index gets in any epoch order', async (t) => {
  const data = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: trainTransforms(), workers: 2 });
  t.teardown(() => data.close());
  const order = [5, 23, 0, 5, 17];
  const got = await collect(data, { batchSize: 2, seed: 3, epoch: 1, indices: order });
  t.deepEqual(got.indices, order);
  t.deepEqual(got.labels, order.map((i) => files[i]!.label));
  const plain = await collect(data, { batchSize: 8, seed: 3, epoch: 1 });
  order.forEach((index, k) => t.true(imageAt(got.images, k).equals(imageAt(plain.images, index)), `image ${index}`));
  const sampler = new DistributedSampler(data.length, { numReplicas: 5, rank: 4, seed: 2 });
  t.deepEqual((await collect(data, { batchSize: 4, indices: sampler.indices(1) })).indices, [...sampler.indices(1)]);
  t.throws(() => data.batches({ batchSize: 2, indices: [1], shuffle: true }), { instanceOf: InvalidArgumentError, message: /shuffle false/ });
  t.throws(() => data.batches({ batchSize: 2, indices: [24] }), { instanceOf: InvalidArgumentError, message: 'Expected integer in [0, 24) for indices[0] but received 24 of type number' });
});

test('shard on a folder and on WebDataset shards: rank r takes positions r, r + worldSize, ... of the epoch, as many on every rank', async (t) => {
  const folder = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: evalTransforms(), workers: 2 });
  const shards = await StreamingDataset.fromWebDataset([join(root, 'a.tar'), join(root, 'b.tar')], { transforms: evalTransforms(), classes, workers: 2 });
  t.teardown(() => (folder.close(), shards.close()));
  for (const [name, data] of [['folder', folder], ['webdataset', shards]] as const) {
    for (const shuffle of [false, true]) {
      const full = await collect(data, { batchSize: 24, shuffle, seed: 4, epoch: 1 });
      const ranks: Array<[number, number]> = [[0, 2], [1, 2], [0, 5], [1, 5], [2, 5], [3, 5], [4, 5], [0, 16], [15, 16]];
      for (const [rank, worldSize] of ranks) {
        const label = `${name}, shuffle ${shuffle}, rank ${rank} of ${worldSize}`;
        const got = await collect(data, { batchSize: 3, shuffle, seed: 4, epoch: 1, shard: { rank, worldSize } });
        const positions = Array.from({ length: shardLength(24, worldSize) }, (_, k) => rank + k * worldSize);
        t.deepEqual(got.indices, positions.map((p) => full.indices[p]), label);
        t.deepEqual(got.labels, positions.map((p) => full.labels[p]), label);
        positions.forEach((p, k) => t.true(imageAt(got.images, k).equals(imageAt(full.images, p)), label));
      }
    }
  }
  t.throws(() => shards.batches({ batchSize: 2, indices: [0, 1] }), {
    instanceOf: InvalidArgumentError,
    message: 'Expected no indices option for a WebDataset source: its shards are read in sequence, not sample by sample; shard: { rank, worldSize } splits an epoch between processes',
  });
  t.throws(() => folder.batches({ batchSize: 2, shard: { rank: 3, worldSize: 3 } }), { instanceOf: InvalidArgumentError, message: /shard\.rank/ });
});

test('bad data: a DataError naming the file by default; skipped and counted on request', async (t) => {
  const dir = join(root, 'bad');
  await mkdir(join(dir, 'ash'), { recursive: true });
  await mkdir(join(dir, 'birch'), { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(join(dir, 'ash', `${i}.jpg`), await picture(i, 0));
  const good = await picture(9, 1);
  await writeFile(join(dir, 'birch', 'truncated.jpg'), good.subarray(0, good.length >> 1));
  await writeFile(join(dir, 'birch', 'text.png'), 'this is not a picture');
  await writeFile(join(dir, 'birch', 'fine.jpg'), good);
  const strict = await StreamingDataset.fromFolder(dir, { transforms: evalTransforms(), workers: 1 });
  t.teardown(() => strict.close());
  const error = await t.throwsAsync(collect(strict, { batchSize: 7 }), { instanceOf: DataError });
  t.regex(error.message, /Cannot decode image '.*birch\/(text\.png|truncated\.jpg)'/);
  const lenient = await StreamingDataset.fromFolder(dir, { transforms: evalTransforms(), workers: 1, onBadSample: 'skip' });
  t.teardown(() => lenient.close());
  const got = await collect(lenient, { batchSize: 4 });
  t.is(got.stats.images, 5);
  t.is(got.stats.skipped, 2);
  t.is(got.labels.length, 5);
  t.true(got.stats.skippedExamples.some((m) => m.includes('text.png')));
  // A shard with a sample missing its label, and a missing shard.
  const shardDir = join(root, 'shards');
  await writeFile(join(shardDir, 'lonely.jpg'), good);
  await createTar({ file: join(root, 'nolabel.tar'), cwd: shardDir, portable: true }, ['0000.jpg', '0000.cls', 'lonely.jpg']);
  await t.throwsAsync(StreamingDataset.fromWebDataset(join(root, 'nolabel.tar'), { transforms: evalTransforms() }), { instanceOf: DataError, message: /nolabel\.tar:lonely' is incomplete: it has no \.cls label/ });
  const skipping = await StreamingDataset.fromWebDataset(join(root, 'nolabel.tar'), { transforms: evalTransforms(), onBadSample: 'skip' });
  t.teardown(() => skipping.close());
  t.is(skipping.length, 1);
  await t.throwsAsync(StreamingDataset.fromWebDataset(join(root, 'missing.tar'), { transforms: evalTransforms() }), { instanceOf: DataError, message: /Cannot read the shard '.*missing\.tar' \(ENOENT\)/ });
  await writeFile(join(root, 'garbage.tar'), Buffer.alloc(3000, 7));
  await t.throwsAsync(StreamingDataset.fromWebDataset(join(root, 'garbage.tar'), { transforms: evalTransforms() }), { instanceOf: DataError, message: /garbage\.tar/ });
});

test('fit() trains from a streaming folder; augment options belong to the transforms', async (t) => {
  const data = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: trainTransforms(), workers: 2 });
  const val = await StreamingDataset.fromFolder(join(root, 'folder'), { transforms: evalTransforms(), workers: 1 });
  t.teardown(() => (data.close(), val.close()));
  const model = await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 8, 8], shortcut: 'A', numClasses: 3, seed: 0 });
  t.teardown(() => model.dispose());
  const report = await fit(model, { train: data, val, epochs: 2, batchSize: 8, trainer: model.trainer({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } }) });
  t.is(report.iterations, 6);
  t.is(report.epochs[1]!.val!.count, 24);
  await t.throwsAsync(fit(model, { train: data, epochs: 1, batchSize: 8, augment: { hflip: true }, trainer: model.trainer({ optimizer: { type: 'sgd', lr: 0.05 } }) }), {
    instanceOf: InvalidArgumentError,
    message: /transforms .* are given when it is opened/,
  });
});

test('RandomResizedCrop pixels: the one-pipeline path equals decoding whole, cropping and resizing (EXIF-rotated too)', async (t) => {
  const { hashSeed, Random } = await import('../lib/data/random.js');
  const { randomResizedCropBox } = await import('../lib/stream/transforms.ts');
  const { decodeRgb, resizeRgb } = await import('../lib/image/preprocess.ts');
  const dir = join(root, 'rotated', 'only');
  await mkdir(dir, { recursive: true });
  const plain = await picture(41, 0);
  await writeFile(join(dir, 'a.jpg'), plain);
  await writeFile(join(dir, 'b.jpg'), await sharp(plain).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer());
  const size = 24; // some boxes shrink, some grow
  const data = await StreamingDataset.fromFolder(join(root, 'rotated'), { transforms: [T.RandomResizedCrop(size), T.Normalize([0, 0, 0], [1, 1, 1])], workers: 1 });
  t.teardown(() => data.close());
  for (const epoch of [0, 1, 2, 3]) {
    const got = await collect(data, { batchSize: 2, seed: 5, epoch });
    const floats = new Float32Array(got.images.buffer, got.images.byteOffset, got.images.length / 4);
    for (const index of [0, 1]) {
      const random = new Random(hashSeed(5, epoch, index + 1));
      const pixels = await decodeRgb(join(dir, index === 0 ? 'a.jpg' : 'b.jpg'), 1e9);
      const [top, left, h, w] = randomResizedCropBox(pixels.width, pixels.height, [0.08, 1], [3 / 4, 4 / 3], {
        uniform: (a, b) => random.uniform(a, b),
        randint: (a, b) => a + random.int(b - a),
      });
      const region = new Uint8Array(h * w * 3);
      for (let y = 0; y < h; y++) region.set(pixels.data.subarray(((top + y) * pixels.width + left) * 3, ((top + y) * pixels.width + left + w) * 3), y * w * 3);
      const rgb = await resizeRgb({ data: region, width: w, height: h }, size, size, 'bilinear');
      let diff = 0;
      for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) diff += Math.abs(floats[index * 3 * size * size + c * size * size + p]! - rgb[p * 3 + c]! / 255);
      t.true(diff / (3 * size * size) < 0.004, `epoch ${epoch} image ${index}: mean difference ${diff / (3 * size * size)}`);
    }
  }
});

test('resnet train --dataset webdataset: trains from shards and saves the validation transform as the preprocessing', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { loadModel } = await import('../lib/index.ts');
  const wd = join(root, 'wd');
  await mkdir(wd, { recursive: true });
  const shardDir = join(root, 'shards');
  const members = (keys: string[]) => keys.flatMap((k) => [`${k}.jpg`, `${k}.cls`]);
  await createTar({ file: join(wd, 'train-000.tar'), cwd: shardDir, portable: true }, members(files.map((f) => f.key)));
  await createTar({ file: join(wd, 'val-000.tar'), cwd: shardDir, portable: true }, members(['0000', '0008', '0016', '0017']));
  const out = join(root, 'wd.safetensors');
  const run = await promisify(execFile)(process.execPath, ['--import=tsx', 'bin/resnet.ts', 'train', '--dataset', 'webdataset', '--root', wd, '--size', '32', '--arch', 'resnet20', '--epochs', '1', '--batch-size', '8', '--json', '--out', out], { encoding: 'utf8' });
  const summary = JSON.parse(run.stdout) as { epochs: Array<{ val: { count: number }; dataWaitSeconds: number }> };
  t.is(summary.epochs[0]!.val.count, 4);
  t.true(summary.epochs[0]!.dataWaitSeconds >= 0);
  const model = await loadModel(out);
  t.teardown(() => model.dispose());
  t.deepEqual(model.classes, ['0', '1', '2']);
  t.deepEqual(model.preprocessing, { resize: 37, crop: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
});

test('awaiting close() at the top level of a script settles (idle workers are unreferenced)', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    const { StreamingDataset, T } = await import('./lib/stream/index.ts');
    const data = await StreamingDataset.fromFolder(${JSON.stringify(join(root, 'folder'))}, { transforms: [T.CenterCrop(16), T.Normalize([0, 0, 0], [1, 1, 1])], workers: 1 });
    for await (const batch of data.batches({ batchSize: 4 })) break;
    await data.close();
    console.log('closed');`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr); // 13 would be "unsettled top-level await"
  t.is(r.stdout.trim(), 'closed');
});
