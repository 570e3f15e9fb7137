// ImageDataset.batches() with an explicit order (`indices`, e.g. a DistributedSampler's) and with
// a data-parallel share of the epoch (`shard`): the samples come in the order asked, subsets and
// splits take the options too, augmentation stays a function of (seed, epoch, batch), and wrong
// combinations are InvalidArgumentErrors.
import test from 'ava';
import { BatchIterator, type Batch } from '../lib/data/batch-iterator.ts';
import type { BatchOptions } from '../lib/data/batch-options.ts';
import { DistributedSampler } from '../lib/data/distributed-sampler.ts';
import { shardLength } from '../lib/data/sample-order.ts';
import { randomSplit } from '../lib/data/split.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import { patternDataset, patternImage } from './helpers/data-files.ts';

async function collect(it: BatchIterator): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of it) out.push(batch);
  return out;
}

const labelsOf = (batches: Batch[]) => batches.flatMap((b) => Array.from(b.labels.data, Number));
const indicesOf = (batches: Batch[]) => batches.flatMap((b) => [...b.indices]);
const bytesOf = (batches: Batch[]) => Buffer.concat(batches.map((b) => Buffer.from(b.images.data.buffer)));

/** 20 images of 1 x 3 x 4 whose label is their index. */
const n = 20;
const dataset = () => patternDataset(n, [1, 3, 4], n);

test('indices: exactly those samples, in that order, repeats included; batches and dropLast count them', async (t) => {
  const ds = dataset();
  const order = [5, 0, 19, 5, 7];
  const it = ds.batches({ batchSize: 3, indices: order });
  t.is(it.numBatches, 2);
  const batches = await collect(it);
  t.deepEqual(batches.map((b) => b.indices.length), [3, 2]);
  t.deepEqual(labelsOf(batches), order);
  t.deepEqual(indicesOf(batches), order);
  // The pixels are the images asked for (mean 0, std 1: byte / 255).
  const expected = order.flatMap((k) => Array.from(patternImage(k, 1, 3, 4), (b) => Math.fround(b / 255)));
  t.deepEqual(Array.from(batches.flatMap((b) => [...b.images.data])), expected);

  const dropped = ds.batches({ batchSize: 3, indices: Int32Array.from(order), dropLast: true, shuffle: false });
  t.is(dropped.numBatches, 1);
  t.deepEqual(labelsOf(await collect(dropped)), [5, 0, 19]);
  t.deepEqual(await collect(ds.batches({ batchSize: 3, indices: [] })), []);
});

test('indices from a DistributedSampler: each rank visits what the sampler hands it', async (t) => {
  const ds = dataset();
  for (const dropLast of [false, true]) {
    for (let rank = 0; rank < 3; rank++) {
      const sampler = new DistributedSampler(ds.length, { numReplicas: 3, rank, seed: 11, dropLast });
      const indices = sampler.indices(4);
      t.deepEqual(labelsOf(await collect(ds.batches({ batchSize: 4, indices }))), [...indices]);
    }
  }
});

test('augmentation stays a function of (seed, epoch, batch): the identity order as indices equals no indices', async (t) => {
  const ds = dataset();
  const augment = { crop: { padding: 1 }, hflip: true, randomErasing: { p: 0.5 } };
  const base: BatchOptions = { batchSize: 6, seed: 5, epoch: 3, augment };
  const plain = await collect(ds.batches(base));
  const identity = await collect(ds.batches({ ...base, indices: Array.from({ length: n }, (_, i) => i) }));
  t.true(bytesOf(plain).equals(bytesOf(identity)));
  const reversed = Array.from({ length: n }, (_, i) => n - 1 - i);
  const a = await collect(ds.batches({ ...base, indices: reversed }));
  const b = await collect(ds.batches({ ...base, indices: reversed }));
  t.true(bytesOf(a).equals(bytesOf(b)));
  t.deepEqual(labelsOf(a), reversed);
});

test('shard: rank r takes positions r, r + worldSize, ... of the epoch\'s order, floor(n / worldSize) of them', async (t) => {
  const ds = dataset();
  for (const shuffle of [false, true]) {
    const full = indicesOf(await collect(ds.batches({ batchSize: 7, shuffle, seed: 9, epoch: 2 })));
    for (const worldSize of [1, 2, 3, 6, 7, 21]) {
      const seen: number[] = [];
      for (let rank = 0; rank < worldSize; rank++) {
        const it = ds.batches({ batchSize: 4, shuffle, seed: 9, epoch: 2, shard: { rank, worldSize } });
        const count = shardLength(n, worldSize);
        t.is(it.numBatches, Math.ceil(count / 4));
        const got = await collect(it);
        const expected = full.filter((_, p) => p % worldSize === rank).slice(0, count);
        t.deepEqual(indicesOf(got), expected, `shuffle ${shuffle}, rank ${rank} of ${worldSize}`);
        t.deepEqual(labelsOf(got), expected);
        seen.push(...expected);
      }
      // Together: the epoch's first worldSize * floor(n / worldSize) samples, each once.
      t.deepEqual([...seen].sort((x, y) => x - y), full.slice(0, shardLength(n, worldSize) * worldSize).sort((x, y) => x - y));
    }
  }
});

test('shard of one is the whole epoch, augmentation included; another epoch reshuffles every rank alike', async (t) => {
  const ds = dataset();
  const base: BatchOptions = { batchSize: 8, shuffle: true, seed: 1, epoch: 0, augment: { crop: { padding: 2 }, hflip: true } };
  const plain = await collect(ds.batches(base));
  const one = await collect(ds.batches({ ...base, shard: { rank: 0, worldSize: 1 } }));
  t.true(bytesOf(plain).equals(bytesOf(one)));
  t.deepEqual(indicesOf(one), indicesOf(plain));
  const e0 = indicesOf(await collect(ds.batches({ ...base, shard: { rank: 1, worldSize: 2 } })));
  const e1 = indicesOf(await collect(ds.batches({ ...base, epoch: 1, shard: { rank: 1, worldSize: 2 } })));
  t.notDeepEqual(e0, e1);
  t.is(e1.length, 10);
});

test('subsets and randomSplit take indices and shard (indices of the subset)', async (t) => {
  const ds = dataset();
  const [train, val] = randomSplit(ds, 0.25, 0);
  const trainLabels = train.labels();
  t.deepEqual(labelsOf(await collect(train.batches({ batchSize: 4, indices: [2, 0, 2] }))), [trainLabels[2], trainLabels[0], trainLabels[2]]);
  const shard = await collect(train.batches({ batchSize: 4, shard: { rank: 1, worldSize: 4 } }));
  t.deepEqual(indicesOf(shard), [1, 5, 9]);
  t.deepEqual(labelsOf(shard), [1, 5, 9].map((i) => trainLabels[i]));
  t.throws(() => val.batches({ batchSize: 1, indices: [val.length] }), {
    instanceOf: InvalidArgumentError,
    message: `Expected integer in [0, ${val.length}) for indices[0] but received ${val.length} of type number`,
  });
});

test('wrong order options: InvalidArgumentErrors naming the option or the bad index', (t) => {
  const ds = dataset();
  const bad: Array<[BatchOptions, string]> = [
    [{ batchSize: 2, indices: [1, 2], shuffle: true }, 'Expected shuffle false (or unset) with indices: indices give the order, shuffle would replace it'],
    [{ batchSize: 2, indices: [1, 2], shard: { rank: 0, worldSize: 2 } }, 'Expected indices or shard, not both: indices already say what this process visits'],
    [{ batchSize: 2, indices: [0, 3, 20] }, 'Expected integer in [0, 20) for indices[2] but received 20 of type number'],
    [{ batchSize: 2, indices: [0, -1] }, 'Expected integer in [0, 20) for indices[1] but received -1 of type number'],
    [{ batchSize: 2, indices: [1.5] }, 'Expected integer in [0, 20) for indices[0] but received 1.5 of type number'],
    [{ batchSize: 2, indices: ['1'] as never }, "Expected integer in [0, 20) for indices[0] but received '1' of type string"],
    [{ batchSize: 2, indices: 3 as never }, 'Expected an array of sample indices for indices but received 3 of type number'],
    [{ batchSize: 2, shard: { rank: 2, worldSize: 2 } }, 'Expected integer in [0, 2) (below shard.worldSize) for shard.rank but received 2 of type number'],
    [{ batchSize: 2, shard: { rank: 0, worldSize: 0 } }, 'Expected positive integer for shard.worldSize but received 0 of type number'],
    [{ batchSize: 2, shard: { rank: -1, worldSize: 2 } }, 'Expected non-negative integer for shard.rank but received -1 of type number'],
    [{ batchSize: 2, shard: { rank: 0, worldSize: 2, size: 3 } as never }, "Unknown option 'size' for shard; expected one of: rank, worldSize"],
    [{ batchSize: 2, shard: [0, 2] as never }, 'Expected an object for shard but received [ 0, 2 ] of type object'],
  ];
  for (const [options, message] of bad) t.throws(() => ds.batches(options), { instanceOf: InvalidArgumentError, message });
  t.throws(() => shardLength(10, 0), { instanceOf: InvalidArgumentError, message: 'Expected positive integer for worldSize but received 0 of type number' });
  t.is(shardLength(10, 3), 3);
  t.is(shardLength(2, 3), 0);
});
