// DistributedSampler against torch.utils.data.DistributedSampler (PyTorch 1.13, its randperm on a
// seeded CPU generator): 1,264 cases from test/fixtures/generate_distributed_sampler.py, index for
// index; then the argument errors, and that the ranks together cover the data set.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistributedSampler } from '../lib/data/distributed-sampler.ts';
import { Mt19937, randperm } from '../lib/data/torch-random.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

interface Case {
  length: number;
  numReplicas: number;
  rank: number;
  shuffle: boolean;
  seed: number;
  epoch: number;
  dropLast: boolean;
  numSamples: number;
  totalSize: number;
  count: number;
  head: number[];
  sha256: string;
}

const sha256 = (indices: Int32Array) => createHash('sha256').update(Buffer.from(indices.buffer, indices.byteOffset, indices.byteLength)).digest('hex');

test('mt19937: the C++ standard\'s check value (10000th draw of the default seed 5489) and torch.randperm(10) with seed 0', (t) => {
  const g = new Mt19937(5489);
  for (let i = 1; i < 10000; i++) g.next();
  t.is(g.next(), 4123659995);
  t.deepEqual([...randperm(10, 0)], [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]);
  t.deepEqual([...randperm(0, 0)], []);
  t.deepEqual([...randperm(1, 3)], [0]);
});

test('equals PyTorch 1.13\'s DistributedSampler: lengths, replicas, ranks, shuffle, seeds, epochs, dropLast', (t) => {
  const dir = ensureGenerated('generate_distributed_sampler.py', 'distributed-sampler', { outputs: ['distributed-sampler.json'] });
  const { cases } = JSON.parse(readFileSync(join(dir, 'distributed-sampler.json'), 'utf8')) as { cases: Case[] };
  t.true(cases.length > 1000);
  for (const c of cases) {
    const name = JSON.stringify({ length: c.length, numReplicas: c.numReplicas, rank: c.rank, shuffle: c.shuffle, seed: c.seed, epoch: c.epoch, dropLast: c.dropLast });
    const sampler = new DistributedSampler(c.length, { numReplicas: c.numReplicas, rank: c.rank, shuffle: c.shuffle, seed: c.seed, dropLast: c.dropLast });
    const indices = sampler.indices(c.epoch);
    t.deepEqual(
      { numSamples: sampler.numSamples, totalSize: sampler.totalSize, count: indices.length, head: [...indices.subarray(0, c.head.length)], sha256: sha256(indices) },
      { numSamples: c.numSamples, totalSize: c.totalSize, count: c.count, head: c.head, sha256: c.sha256 },
      name,
    );
  }
});

test('defaults: shuffle true, seed 0, dropLast false (PyTorch\'s)', (t) => {
  const a = new DistributedSampler(10, { numReplicas: 2, rank: 1 });
  t.deepEqual([a.shuffle, a.seed, a.dropLast], [true, 0, false]);
  t.deepEqual([...a.indices(0)], [1, 5, 9, 8, 2]); // torch.randperm(10) with seed 0 is 4 1 7 5 3 9 0 8 6 2
  t.deepEqual([...a.indices(0)], [...new DistributedSampler(10, { numReplicas: 2, rank: 1, shuffle: true, seed: 0, dropLast: false }).indices(0)]);
});

test('the ranks together: every index once (padded with repeats from the start), or all distinct with dropLast', (t) => {
  for (const n of [1, 5, 7, 10, 33, 64]) {
    for (const numReplicas of [1, 2, 3, 4, 8]) {
      for (const shuffle of [false, true]) {
        for (const dropLast of [false, true]) {
          const ranks = Array.from({ length: numReplicas }, (_, rank) => new DistributedSampler(n, { numReplicas, rank, shuffle, dropLast, seed: 3 }).indices(2));
          const sizes = new Set(ranks.map((r) => r.length));
          t.is(sizes.size, 1, 'every rank gets as many');
          const all = ranks.flatMap((r) => [...r]);
          const distinct = new Set(all);
          if (dropLast) {
            t.is(all.length, Math.floor(n / numReplicas) * numReplicas);
            t.is(distinct.size, all.length);
          } else {
            t.is(all.length, Math.ceil(n / numReplicas) * numReplicas);
            t.is(distinct.size, n);
          }
          t.true(all.every((i) => i >= 0 && i < n));
        }
      }
    }
  }
});

test('arguments: typed InvalidArgumentErrors naming the argument', (t) => {
  const bad: Array<[() => unknown, string]> = [
    [() => new DistributedSampler(10, { numReplicas: 4, rank: 4 }), 'Expected integer in [0, 4) (below numReplicas) for rank but received 4 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: -1 }), 'Expected non-negative integer for rank but received -1 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 0, rank: 0 }), 'Expected positive integer for numReplicas but received 0 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 1.5, rank: 0 }), 'Expected positive integer for numReplicas but received 1.5 of type number'],
    [() => new DistributedSampler(-1, { numReplicas: 1, rank: 0 }), 'Expected integer in [0, 2147483647] for datasetLength but received -1 of type number'],
    [() => new DistributedSampler(2.5, { numReplicas: 1, rank: 0 }), 'Expected integer in [0, 2147483647] for datasetLength but received 2.5 of type number'],
    [() => new DistributedSampler(2 ** 31, { numReplicas: 1, rank: 0 }), 'Expected integer in [0, 2147483647] for datasetLength but received 2147483648 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0, seed: -3 }), 'Expected non-negative integer for seed but received -3 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0, shuffle: 'yes' as never }), "Expected boolean for shuffle but received 'yes' of type string"],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0, dropLast: 1 as never }), 'Expected boolean for dropLast but received 1 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0, drop_last: true } as never), "Unknown option 'drop_last' for DistributedSampler; expected one of: numReplicas, rank, shuffle, seed, dropLast"],
    [() => new DistributedSampler(10, undefined as never), 'Expected an object for options but received undefined of type undefined'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0 }).indices(-1), 'Expected non-negative integer for epoch but received -1 of type number'],
    [() => new DistributedSampler(10, { numReplicas: 2, rank: 0 }).indices(0.5), 'Expected non-negative integer for epoch but received 0.5 of type number'],
  ];
  for (const [fn, message] of bad) t.throws(fn, { instanceOf: InvalidArgumentError, message });
});

test('an empty data set gives every rank nothing', (t) => {
  for (const dropLast of [false, true]) {
    const s = new DistributedSampler(0, { numReplicas: 3, rank: 2, dropLast });
    t.deepEqual([s.numSamples, s.totalSize, s.indices(4).length], [0, 0, 0]);
  }
});
