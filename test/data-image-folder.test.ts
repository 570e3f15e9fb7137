// ImageFolder on PNG and JPEG files written here with sharp: class order and labels as torchvision
// gives them, exact pixels for lossless files, resizing to one size, and broken folders.
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageFolder } from '../lib/data/datasets.ts';
import { DataError } from '../lib/data/errors.ts';
import { InvalidArgumentError } from '../lib/errors.ts';
import { tempDir } from './helpers/data-files.ts';

/** Interleaved RGB(A) bytes with a distinct value per pixel and channel. */
function pixels(width: number, height: number, channels: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: width * height * channels }, (_, i) => (i * 29 + seed * 53 + 7) & 255));
}

async function image(path: string, width: number, height: number, channels: 1 | 3 | 4, seed: number): Promise<Buffer> {
  const raw = pixels(width, height, channels, seed);
  const img = sharp(raw, { raw: { width, height, channels } });
  await mkdir(join(path, '..'), { recursive: true });
  await (path.toLowerCase().endsWith('.jpg') ? img.jpeg({ quality: 100 }) : img.png()).toFile(path);
  return raw;
}

/** Planar [3, h, w] from interleaved RGB(A) or gray, as ImageDataset keeps images. */
function planar(raw: Buffer, width: number, height: number, channels: number, left = 0, cropWidth = width): number[] {
  const out: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = left; x < left + cropWidth; x++) out.push(raw[(y * width + x) * channels + (channels === 1 ? 0 : c)]!);
    }
  }
  return out;
}

test('classes sorted by code point, labels, torchvision file order, exact PNG pixels, RGBA and gray to RGB', async (t) => {
  const root = await tempDir(t);
  const upperA = await image(join(root, 'C_upper', 'z.png'), 4, 4, 3, 1);
  const nested = await image(join(root, 'C_upper', 'nested', 'deep.png'), 4, 4, 3, 2);
  const rgba = await image(join(root, 'a_dog', 'rgba.png'), 4, 4, 4, 3);
  const gray = await image(join(root, 'a_dog', 'gray.png'), 4, 4, 1, 4);
  const wide = await image(join(root, 'b_cat', 'wide.png'), 8, 4, 3, 5); // 8 wide, 4 high
  // JPEG: a flat colour, which survives the lossy coding (noise would not).
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 100, b: 50 } } }).jpeg({ quality: 95 }).toFile(join(root, 'b_cat', 'photo.JPG'));
  await writeFile(join(root, 'b_cat', 'notes.txt'), 'not an image');
  await writeFile(join(root, 'readme.txt'), 'not a class');

  const ds = await ImageFolder.load({ root, size: 4, concurrency: 2 });
  t.deepEqual(ds.classes, ['C_upper', 'a_dog', 'b_cat']);
  t.deepEqual(ds.classToIdx, { C_upper: 0, a_dog: 1, b_cat: 2 });
  t.is(ds.length, 6);
  t.deepEqual(ds.imageShape, [3, 4, 4]);
  t.deepEqual([...ds.labels()], [0, 0, 1, 1, 2, 2]);
  // A class folder's own files come before its sub-folders' (sorted(os.walk(...))).
  const sources = Array.from({ length: 6 }, (_, i) => ds.get(i).source!.slice(root.length + 1));
  t.deepEqual(sources, ['C_upper/z.png', 'C_upper/nested/deep.png', 'a_dog/gray.png', 'a_dog/rgba.png', 'b_cat/photo.JPG', 'b_cat/wide.png']);

  t.deepEqual([...ds.get(0).image.data], planar(upperA, 4, 4, 3));
  t.deepEqual([...ds.get(1).image.data], planar(nested, 4, 4, 3));
  t.deepEqual([...ds.get(2).image.data], planar(gray, 4, 4, 1), 'gray replicated to R, G and B');
  t.deepEqual([...ds.get(3).image.data], planar(rgba, 4, 4, 4), 'alpha dropped, colour kept');
  // 'crop': the shorter side is already 4, so no resampling: the centre 4 columns (2..5) exactly.
  t.deepEqual([...ds.get(5).image.data], planar(wide, 8, 4, 3, 2, 4));
  // JPEG is lossy: close, not equal.
  const jpeg = ds.get(4).image.data;
  t.true(jpeg.every((v, i) => Math.abs(v - [200, 100, 50][Math.floor(i / 16)]!) <= 3), `JPEG decodes near the original: ${jpeg}`);

  // Statistics are computed from the loaded pixels.
  let sum = 0;
  for (let i = 0; i < 6; i++) sum += ds.get(i).image.data.subarray(0, 16).reduce((a, b) => a + b, 0);
  t.true(Math.abs(ds.mean[0]! - sum / (6 * 16) / 255) < 1e-12);
  t.is(ds.mean.length, 3);
});

test("sizes: [height, width], 'stretch', downscaling, and given statistics", async (t) => {
  const root = await tempDir(t);
  await image(join(root, 'one', 'big.png'), 40, 20, 3, 1);
  await image(join(root, 'two', 'small.png'), 6, 6, 3, 2);
  const crop = await ImageFolder.load({ root, size: [8, 12], mean: ImageFolder.imagenetMean, std: ImageFolder.imagenetStd });
  t.deepEqual(crop.imageShape, [3, 8, 12]);
  t.deepEqual(crop.mean, [0.485, 0.456, 0.406]);
  const stretch = await ImageFolder.load({ root, size: 5, resize: 'stretch' });
  t.deepEqual(stretch.imageShape, [3, 5, 5]);
  t.is(stretch.get(0).image.data.length, 75);
});

test('broken folders: undecodable image, class without images, no classes, bad options', async (t) => {
  const root = await tempDir(t);
  await image(join(root, 'good', 'a.png'), 4, 4, 3, 1);
  const broken = join(root, 'good', 'broken.png');
  await writeFile(broken, Buffer.from('this is not a PNG file at all'));
  const error = await t.throwsAsync(ImageFolder.load({ root, size: 4 }), { instanceOf: DataError });
  t.regex(error!.message, new RegExp(`^Cannot decode image '${broken}': .+`));
  t.is(error!.file, broken);

  const empty = await tempDir(t);
  await image(join(empty, 'a', 'x.png'), 4, 4, 3, 1);
  await mkdir(join(empty, 'b'));
  await writeFile(join(empty, 'b', 'x.bmp'), 'bitmap sharp cannot read');
  await t.throwsAsync(ImageFolder.load({ root: empty, size: 4 }), {
    instanceOf: DataError,
    message: `Found no image for the class(es) 'b' in '${empty}'; extensions read: .jpg, .jpeg, .png, .webp, .tif, .tiff, .gif, .avif`,
  });
  const none = await tempDir(t);
  await t.throwsAsync(ImageFolder.load({ root: none, size: 4 }), { instanceOf: DataError, message: `Cannot find any class folder in '${none}'` });
  await t.throwsAsync(ImageFolder.load({ root: join(none, 'missing'), size: 4 }), { instanceOf: DataError });
  await t.throwsAsync(ImageFolder.load({ root, size: 0 }), {
    instanceOf: InvalidArgumentError,
    message: 'Expected positive integer for size but received 0 of type number',
  });
  await t.throwsAsync(ImageFolder.load({ root, size: 4, resize: 'fit' as 'crop' }), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'crop', 'stretch' for resize but received 'fit' of type string",
  });
});

// Hardening: a link back to a folder above it (os.walk, and so torchvision, loops forever there),
// a link to itself, and a file name that is not valid UTF-8 (torchvision reads it; it used to be
// dropped silently).
test('symlink loops are walked once; names that are not UTF-8 are read', async (t) => {
  const { symlink } = await import('node:fs/promises');
  const root = await tempDir(t);
  const a = await image(join(root, 'cat', 'a.png'), 4, 4, 3, 1);
  await mkdir(join(root, 'cat', 'sub'));
  await symlink(join(root, 'cat'), join(root, 'cat', 'sub', 'up')); // cat/sub/up -> cat
  await symlink(join(root, 'cat', 'self'), join(root, 'cat', 'self')); // ELOOP
  const raw = pixels(4, 4, 3, 2);
  const latin1Name = Buffer.concat([Buffer.from(join(root, 'dog', 'caf')), Buffer.from([0xe9]), Buffer.from('.png')]); // 'café' in Latin-1
  await mkdir(join(root, 'dog'));
  await writeFile(latin1Name, await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer());
  const data = await ImageFolder.load({ root, size: 4 });
  t.deepEqual(data.classes, ['cat', 'dog']);
  t.is(data.length, 2);
  const [first, second] = [data.get(0), data.get(1)];
  t.like(first, { source: join(root, 'cat', 'a.png'), label: 0 });
  t.like(second, { source: join(root, 'dog', 'caf\ufffd.png'), label: 1 });
  t.deepEqual(Array.from(first.image.data), planar(a, 4, 4, 3));
  t.deepEqual(Array.from(second.image.data), planar(raw, 4, 4, 3));
});

test('a file that cannot be read says why, not "unsupported image format"', async (t) => {
  const { decodeImage } = await import('../lib/data/image-folder.ts');
  const root = await tempDir(t);
  await mkdir(join(root, 'folder.png'));
  const error = await t.throwsAsync(decodeImage(join(root, 'folder.png'), 4, 4, 'crop', new Uint8Array(48)), { instanceOf: DataError });
  t.is(error!.message, `Cannot read the image '${join(root, 'folder.png')}' (EISDIR)`);
  t.is(error!.file, join(root, 'folder.png'));
});
