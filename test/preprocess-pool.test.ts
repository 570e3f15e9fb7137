// PreprocessPool: preprocess() on worker threads (the server's default), equal to the main thread's
// result bit for bit, with the same errors, and nothing left running after close().
import test from 'ava';
import sharp from 'sharp';
import { ImageError, preprocess, ResNetError } from '../lib/index.ts';
import { PreprocessPool } from '../lib/image/preprocess-pool.ts';

async function gradient(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (i >> 5)) % 256;
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 85 }).toBuffer();
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const options of [{ resize: 72, crop: 64 }, { resize: 256, crop: 224, resampler: 'pillow' as const }, { fit: 'cover' as const, crop: [40, 48] as [number, number] }]) {
  test(`the pool's tensors are preprocess()'s, bit for bit: ${JSON.stringify(options)}`, async (t) => {
    const pool = new PreprocessPool(options, 2);
    t.teardown(() => pool.close());
    // A reduction, an enlargement (Pillow's arithmetic in the worker) and a JPEG.
    const images = [await gradient(300, 200, 'png'), await gradient(50, 40, 'png'), await gradient(120, 160, 'jpeg')];
    const [mine, theirs] = await Promise.all([Promise.all(images.map((i) => pool.run(i))), Promise.all(images.map((i) => preprocess(i, options)))]);
    mine.forEach((tensor, i) => {
      t.deepEqual(tensor.shape, theirs[i]!.shape);
      t.true(bytes(tensor.data).equals(bytes(theirs[i]!.data)));
    });
  });
}

test('an unreadable image is the same ImageError as on the main thread; the pool goes on', async (t) => {
  const pool = new PreprocessPool({ resize: 72, crop: 64 }, 1);
  t.teardown(() => pool.close());
  const garbage = Buffer.from('not an image at all');
  const expected = await t.throwsAsync(preprocess(garbage, { resize: 72, crop: 64 }), { instanceOf: ImageError });
  const error = await t.throwsAsync(pool.run(garbage), { instanceOf: ImageError });
  t.is(error.message, expected.message);
  t.is(error.code, 'ERR_RESNET_IMAGE');
  t.deepEqual((await pool.run(await gradient(80, 80, 'png'))).shape, [1, 3, 64, 64]);
});

test('close() rejects work still pending and refuses new work', async (t) => {
  const pool = new PreprocessPool({ resize: 256, crop: 224 }, 1);
  const pending = pool.run(await gradient(1200, 900, 'png'));
  await pool.close();
  await t.throwsAsync(pending, { instanceOf: ResNetError, message: /closed/ });
  await t.throwsAsync(pool.run(Buffer.alloc(10)), { instanceOf: ResNetError, message: /closed/ });
  t.throws(() => new PreprocessPool({ crop: 0 }), { message: /crop/ });
});

test('the caller\'s bytes stay the caller\'s: pooled small Buffers and large ones alike', async (t) => {
  const pool = new PreprocessPool({ resize: 72, crop: 64 }, 1);
  t.teardown(() => pool.close());
  const large = await gradient(300, 200, 'png');
  const small = Buffer.from(new Uint8Array(await gradient(8, 8, 'png'))); // from Node's shared 8 KB pool
  t.true(small.length < 4096 && small.buffer.byteLength > small.length);
  const [a, b] = [large.length, small.length];
  const copies = [Buffer.from(large), Buffer.from(small)];
  await pool.run(large);
  await pool.run(small);
  t.is(large.length, a);
  t.is(small.length, b);
  t.true(large.equals(copies[0]!) && small.equals(copies[1]!));
});

test('awaiting close() at the top level of a script settles (an idle worker is unreferenced)', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    const { PreprocessPool } = await import('./lib/image/preprocess-pool.ts');
    const sharp = (await import('sharp')).default;
    const pool = new PreprocessPool({ resize: 40, crop: 32 }, 1);
    await pool.run(await sharp({ create: { width: 50, height: 40, channels: 3, background: '#808080' } }).png().toBuffer());
    await pool.close();
    console.log('closed');`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr); // 13 would be "unsettled top-level await"
  t.is(r.stdout.trim(), 'closed');
});
