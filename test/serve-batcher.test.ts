// The dynamic batcher on its own, with fake models whose calls we can hold and inspect: batching
// window, maxBatch, batching off, queue bound, timeouts, aborts, replicas, errors, close().
import test from 'ava';
import { InvalidArgumentError, Tensor } from '../lib/index.ts';
import { Batcher, type BatchTask } from '../lib/serve/batcher.ts';
import { ClientClosedError, PayloadTooLargeError, QueueFullError, RequestTimeoutError, ShuttingDownError } from '../lib/serve/errors.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A model stand-in: records its batch sizes; while `held`, calls wait for release(). */
class FakeModel {
  readonly batches: number[] = [];
  active = 0;
  maxActive = 0;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #started: (() => void)[] = [];
  constructor(readonly id: number) {}
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }
  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }
  /** Resolves when the next call starts (at once if one is running). */
  started(): Promise<void> {
    if (this.active > 0) return Promise.resolve();
    return new Promise((resolve) => this.#started.push(resolve));
  }
  async call(batch: Tensor<Float32Array>) {
    this.batches.push(batch.shape[0]!);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (const resolve of this.#started.splice(0)) resolve();
    try {
      if (this.#gate) await this.#gate;
      else await sleep(1);
      // Row i: [the image's first value, this model's id]
      const n = batch.shape[0]!;
      const per = batch.data.length / n;
      const data = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        data[2 * i] = batch.data[i * per]!;
        data[2 * i + 1] = this.id;
      }
      return { out: { data, shape: [n, 2] } };
    } finally {
      this.active--;
    }
  }
}

const task = (key = 'a'): BatchTask<FakeModel> => ({ key, run: (model, batch) => model.call(batch) });

/** A [1, 3, size, size] image whose values are all `value`. */
const image = (value: number, size = 4) => new Tensor(new Float32Array(3 * size * size).fill(value), [1, 3, size, size]);

/** 'answered' if `work` settles before a `ms` timer fires, else 'timer' (the timer is cleared either way). */
async function beforeDelay(work: Promise<unknown>, ms: number): Promise<'answered' | 'timer'> {
  let timer: NodeJS.Timeout | undefined;
  const fired = new Promise<'timer'>((resolve) => (timer = setTimeout(() => resolve('timer'), ms)));
  try {
    return await Promise.race([work.then(() => 'answered' as const), fired]);
  } finally {
    clearTimeout(timer);
  }
}

test('requests arriving within maxDelayMs run as one batch, and each gets its own rows', async (t) => {
  const model = new FakeModel(7);
  const batcher = new Batcher({ replicas: [model], maxDelayMs: 30 });
  const results = await Promise.all([1, 2, 3].map((v) => batcher.submit(task(), [image(v), image(v + 0.5)])));
  t.deepEqual(model.batches, [6]);
  t.deepEqual(
    results.map((r) => r.map((o) => [...o.out!.data])),
    [
      [
        [1, 7],
        [1.5, 7],
      ],
      [
        [2, 7],
        [2.5, 7],
      ],
      [
        [3, 7],
        [3.5, 7],
      ],
    ],
  );
  t.deepEqual(results[0]![0]!.out!.shape, [2]);
});

test('a batch holds maxBatch images at most; a big request spans several batches, in order', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model], maxBatch: 8, maxDelayMs: 20 });
  const images = Array.from({ length: 20 }, (_, i) => image(i));
  const out = await batcher.submit(task(), images);
  t.deepEqual(model.batches, [8, 8, 4]);
  t.deepEqual(
    out.map((o) => o.out!.data[0]),
    images.map((_, i) => i),
  );
});

// Hardening: with a batching window by default, a lone request waited maxDelayMs for company that
// never came (42.8 req/s instead of 51.8 at one connection). By default an idle replica starts at
// once and the batch is what queued while it was busy.
test('by default an idle replica starts at once, and what queues while it is busy runs as one batch', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model] });
  t.is(batcher.maxDelayMs, 0);
  model.hold();
  const first = batcher.submit(task(), [image(1)]);
  t.deepEqual(model.batches, [1]); // dispatched in the same tick, before any timer could fire
  const rest = [batcher.submit(task(), [image(2)]), batcher.submit(task(), [image(3), image(4)])];
  t.deepEqual(model.batches, [1]); // busy: these queue
  model.release();
  await first;
  await Promise.all(rest);
  t.deepEqual(model.batches, [1, 3]);
});

test('a full batch does not wait for maxDelayMs', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model], maxBatch: 4, maxDelayMs: 10_000 });
  // No clock bound: the batch must simply come back before a maxDelayMs timer fires.
  t.is(await beforeDelay(batcher.submit(task(), [image(1), image(2), image(3), image(4)]), 10_000), 'answered');
  t.deepEqual(model.batches, [4]);
});

test('maxBatch 1 turns batching off', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model], maxBatch: 1, maxDelayMs: 10_000 });
  const all = Promise.all([1, 2, 3, 4].map((v) => batcher.submit(task(), [image(v)])));
  t.is(await beforeDelay(all, 10_000), 'answered', 'no batching window when every batch is full at once');
  t.deepEqual(model.batches, [1, 1, 1, 1]);
});

test('different tasks and image sizes never share a batch', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model], maxDelayMs: 20 });
  await Promise.all([
    batcher.submit(task('a'), [image(1)]),
    batcher.submit(task('b'), [image(2)]),
    batcher.submit(task('a'), [image(3, 8)]),
    batcher.submit(task('a'), [image(4)]),
  ]);
  t.deepEqual([...model.batches].sort(), [1, 1, 2]);
});

test('a full queue refuses at once with QueueFullError; running images do not count', async (t) => {
  const model = new FakeModel(0);
  model.hold();
  const batcher = new Batcher({ replicas: [model], maxBatch: 1, maxDelayMs: 0, maxQueue: 2 });
  const running = batcher.submit(task(), [image(1)]);
  await model.started();
  t.is(batcher.running, 1);
  const queued = batcher.submit(task(), [image(2), image(3)]);
  t.is(batcher.queued, 2);
  const error = await t.throwsAsync(batcher.submit(task(), [image(4)]), { instanceOf: QueueFullError });
  t.is(error?.code, 'ERR_RESNET_QUEUE_FULL');
  t.true(error!.retryAfterSeconds >= 1);
  model.release();
  t.is((await running).length, 1);
  t.is((await queued).length, 2);
  // Room again.
  t.is((await batcher.submit(task(), [image(5)])).length, 1);
});

test('a request with more images than maxQueue is refused as too large', async (t) => {
  const batcher = new Batcher({ replicas: [new FakeModel(0)], maxQueue: 2 });
  await t.throwsAsync(batcher.submit(task(), [image(1), image(2), image(3)]), { instanceOf: PayloadTooLargeError });
});

test('a timed-out request rejects with RequestTimeoutError and its waiting images leave the queue', async (t) => {
  const model = new FakeModel(0);
  model.hold();
  const batcher = new Batcher({ replicas: [model], maxBatch: 1, maxDelayMs: 0, timeoutMs: 100 });
  const first = batcher.submit(task(), [image(1)]);
  await model.started();
  const second = batcher.submit(task(), [image(2), image(3)]);
  t.is(batcher.queued, 2);
  const [e1, e2] = await Promise.all([
    t.throwsAsync(first, { instanceOf: RequestTimeoutError }),
    t.throwsAsync(second, { instanceOf: RequestTimeoutError }),
  ]);
  t.is(e1?.code, 'ERR_RESNET_TIMEOUT');
  t.regex(e2?.message ?? '', /within 100 ms/);
  t.is(batcher.queued, 0, 'the waiting images were dropped');
  model.release();
  await batcher.drained();
  t.deepEqual(model.batches, [1], 'only the batch already running ran');
  t.is(batcher.pendingRequests, 0);
});

test('an aborted request leaves the queue and rejects with ClientClosedError', async (t) => {
  const model = new FakeModel(0);
  model.hold();
  const batcher = new Batcher({ replicas: [model], maxBatch: 1, maxDelayMs: 0 });
  const first = batcher.submit(task(), [image(1)]);
  await model.started();
  const controller = new AbortController();
  const second = batcher.submit(task(), [image(2)], { signal: controller.signal });
  controller.abort();
  await t.throwsAsync(second, { instanceOf: ClientClosedError });
  t.is(batcher.queued, 0);
  model.release();
  await first;
  t.deepEqual(model.batches, [1]);
});

test('replicas take batches from the shared queue in parallel, each one batch at a time', async (t) => {
  const models = [new FakeModel(1), new FakeModel(2)];
  for (const m of models) m.hold();
  const batcher = new Batcher({ replicas: models, maxBatch: 2, maxDelayMs: 0 });
  const requests = [1, 2, 3, 4, 5, 6].map((v) => batcher.submit(task(), [image(v)]));
  await Promise.all(models.map((m) => m.started()));
  t.is(batcher.busyReplicas, 2, 'both replicas run a batch at once');
  t.is(batcher.running, 2, 'with no batching window, each replica took the one image there was');
  t.is(batcher.queued, 4);
  for (const m of models) m.release();
  const out = await Promise.all(requests);
  t.deepEqual(
    out.map((r) => r[0]!.out!.data[0]),
    [1, 2, 3, 4, 5, 6],
  );
  t.true(models.every((m) => m.maxActive === 1), 'a replica never runs two batches at once');
  t.true(models.every((m) => m.batches.length > 0), 'both replicas worked');
  t.is(models.flatMap((m) => m.batches).reduce((a, b) => a + b), 6);
});

test('a failing batch rejects its requests; the next batches run', async (t) => {
  let calls = 0;
  const model = new FakeModel(0);
  const flaky: BatchTask<FakeModel> = {
    key: 'a',
    run: async (m, batch) => {
      if (calls++ === 0) throw new InvalidArgumentError('boom');
      return m.call(batch);
    },
  };
  const batcher = new Batcher({ replicas: [model], maxDelayMs: 20 });
  const failed = await Promise.allSettled([batcher.submit(flaky, [image(1)]), batcher.submit(flaky, [image(2)])]);
  t.deepEqual(
    failed.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  t.is(((failed[0] as PromiseRejectedResult).reason as Error).message, 'boom');
  t.is((await batcher.submit(flaky, [image(3)]))[0]!.out!.data[0], 3);
});

test('a task whose output rows do not match the batch fails that batch', async (t) => {
  const bad: BatchTask<FakeModel> = { key: 'a', run: async () => ({ out: { data: new Float32Array(2), shape: [1, 2] } }) };
  const batcher = new Batcher({ replicas: [new FakeModel(0)], maxDelayMs: 20 });
  const results = await Promise.allSettled([batcher.submit(bad, [image(1)]), batcher.submit(bad, [image(2)])]);
  t.true(results.every((r) => r.status === 'rejected'));
});

test('close() runs what is queued without waiting, refuses new work, and resolves when drained', async (t) => {
  const model = new FakeModel(0);
  const batcher = new Batcher({ replicas: [model], maxBatch: 8, maxDelayMs: 60_000 });
  const pending = batcher.submit(task(), [image(1), image(2)]);
  t.is(await beforeDelay(batcher.close(), 60_000), 'answered', 'close() does not wait out maxDelayMs');
  t.is((await pending).length, 2);
  await t.throwsAsync(batcher.submit(task(), [image(3)]), { instanceOf: ShuttingDownError, message: /shutting down/ });
  t.true(batcher.closing);
});

test('options are validated', (t) => {
  t.throws(() => new Batcher({ replicas: [] }), { instanceOf: InvalidArgumentError });
  t.throws(() => new Batcher({ replicas: [new FakeModel(0)], maxBatch: 0 }), { message: /maxBatch/ });
  t.throws(() => new Batcher({ replicas: [new FakeModel(0)], maxQueue: 1.5 }), { message: /maxQueue/ });
  t.throws(() => new Batcher({ replicas: [new FakeModel(0)], maxDelay: 5 } as never), { message: /Unknown option 'maxDelay'/ });
});

test('images must be [1, C, H, W] float32', async (t) => {
  const batcher = new Batcher({ replicas: [new FakeModel(0)] });
  await t.throwsAsync(batcher.submit(task(), []), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(batcher.submit(task(), [new Tensor(new Float32Array(6), [2, 3, 1, 1])]), { instanceOf: InvalidArgumentError });
});
