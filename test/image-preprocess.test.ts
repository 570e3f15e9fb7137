// preprocess / preprocessBatch against torchvision's ImageClassification transform on the images
// of test/fixtures/generate_images.py (JPEG, PNG, WebP, GIF, TIFF, grayscale, RGBA, CMYK, 16-bit,
// EXIF-rotated; references computed by torchvision 0.14 on Pillow 9.4), plus AVIF encoded here.
//
// Decoding gives Pillow's bytes exactly, and the float conversion is torchvision's float32
// arithmetic, so any difference comes from the resampler:
// - resampler 'pillow' (and, with either resampler, enlargements and images already at the size)
//   computes Pillow's own fixed-point resize: the tensor must equal torchvision's bit for bit;
// - resampler 'sharp' (the default) reduces in libvips, whose antialiased kernels are close to
//   Pillow's but not equal. Measured (mean / max |ours - torchvision|, normalised units, where one
//   grey level is about 0.017):
//     typical reductions (500x375, 640x480, 257x300, TIFF, WebP, GIF, gray, CMYK, EXIF, AVIF)
//                                            0.0036 .. 0.0048 / 0.0175 .. 0.035
//     1600x1200 JPEG (4.7x; libvips box-shrinks by 2 first)       0.0078 / 0.070
//     640x480, resize 224, crop 256 (the resized edges are kept)  0.0034 / 0.122
//   Bounds: the worst measured times 1.5 (test/fixtures/cache/image-report.md has each run's numbers).
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { InvalidArgumentError, ResNetError } from '../lib/errors.ts';
import { ImageError, fromTransforms, preprocess, preprocessBatch, type Interpolation, type PreprocessOptions } from '../lib/image/index.ts';
import { Tensor } from '../lib/tensor.ts';
import { weightsEntry } from '../lib/weights/registry.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

const MEAN_BOUND = 0.0078 * 1.5;
const MAX_BOUND = 0.122 * 1.5;

interface Case {
  name: string;
  file: string;
  format: string;
  mode: string;
  size: [number, number];
  resize: number;
  crop: number;
  interpolation: Interpolation;
  shape: number[];
  reference: string;
  note: string;
}

const dir = ensureGenerated('generate_images.py', 'images');
const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { torchvision: string; cases: Case[] };
const byName = new Map(index.cases.map((c) => [c.name, c]));
const path = (file: string) => join(dir, file);

async function reference(c: Case): Promise<Float32Array> {
  const bytes = await readFile(path(c.reference));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function difference(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

const optionsOf = (c: Case): PreprocessOptions => ({ resize: c.resize, crop: c.crop, interpolation: c.interpolation });

/** Whether torchvision reduces the image (the only case where the resamplers differ). */
function reduces(c: Case): boolean {
  const [w, h] = c.size;
  return Math.min(w, h) > c.resize;
}

const report: string[] = [];

test.serial('every image: shape, dtype, and the difference from torchvision', async (t) => {
  t.true(index.cases.length >= 20);
  report.push('| case | format | mode | size | resize/crop | interpolation | sharp: mean | sharp: max | pillow: max |', '|---|---|---|---|---|---|---|---|---|');
  for (const c of index.cases) {
    const expected = await reference(c);
    const ours = await preprocess(path(c.file), optionsOf(c));
    t.true(ours instanceof Tensor);
    t.true(ours.data instanceof Float32Array, c.name);
    t.is(ours.dtype, 'float32');
    t.deepEqual([...ours.shape], c.shape, c.name);
    t.deepEqual([...ours.shape], [1, 3, c.crop, c.crop]);
    const d = difference(ours.data, expected);
    t.true(d.mean <= MEAN_BOUND, `${c.name}: mean |diff| ${d.mean} > ${MEAN_BOUND}`);
    t.true(d.max <= MAX_BOUND, `${c.name}: max |diff| ${d.max} > ${MAX_BOUND}`);
    // Enlargements and images already at the size never go through libvips' resampler.
    if (!reduces(c)) t.is(d.max, 0, `${c.name}: not reduced, so torchvision's exactly`);

    const exact = await preprocess(path(c.file), { ...optionsOf(c), resampler: 'pillow' });
    const e = difference(exact.data, expected);
    t.is(e.max, 0, `${c.name}: resampler 'pillow' differs from torchvision by ${e.max}`);

    const row = `| ${c.name} | ${c.format} | ${c.mode} | ${c.size.join('x')} | ${c.resize}/${c.crop} | ${c.interpolation} | ${d.mean.toFixed(5)} | ${d.max.toFixed(4)} | ${e.max} |`;
    report.push(row);
    t.log(row);
  }
  await writeFile(join(dir, '..', 'image-report.md'), `# preprocess vs torchvision ${index.torchvision}\n\n${report.join('\n')}\n`);
});

test('the cases cover the formats, modes and shapes asked for', (t) => {
  const formats = new Set(index.cases.map((c) => c.format));
  for (const f of ['jpeg', 'png', 'webp', 'gif', 'tiff']) t.true(formats.has(f), f);
  const modes = new Set(index.cases.map((c) => c.mode));
  for (const m of ['RGB', 'L', 'RGBA', 'CMYK', 'P', 'I']) t.true(modes.has(m), m);
  const sizes = new Set(index.cases.map((c) => c.size.join('x')));
  for (const s of ['500x375', '375x500', '640x480', '257x300', '224x224', '1000x200']) t.true(sizes.has(s), s);
});

test('inputs: a path, a Buffer, a Uint8Array and a view into a larger buffer give the same tensor', async (t) => {
  const c = byName.get('jpeg-500x375')!;
  const bytes = await readFile(path(c.file));
  const fromPath = await preprocess(path(c.file));
  const fromBuffer = await preprocess(bytes);
  const plain = new Uint8Array(bytes.byteLength);
  plain.set(bytes);
  const fromUint8 = await preprocess(plain);
  const big = new Uint8Array(bytes.byteLength + 100);
  big.set(bytes, 37);
  const fromView = await preprocess(big.subarray(37, 37 + bytes.byteLength));
  t.deepEqual(fromBuffer.data, fromPath.data);
  t.deepEqual(fromUint8.data, fromPath.data);
  t.deepEqual(fromView.data, fromPath.data);
});

test('preprocessBatch: [N, 3, crop, crop], in input order, each item equal to preprocess', async (t) => {
  const names = ['jpeg-500x375', 'png-257x300', 'gif-300x257', 'png-rgba-320x240', 'jpeg-cmyk-400x300', 'webp-1000x200', 'jpeg-exif6'];
  const cases = names.map((n) => byName.get(n)!);
  // Mixed kinds of input: paths and bytes.
  const inputs = await Promise.all(cases.map(async (c, i) => (i % 2 === 0 ? path(c.file) : new Uint8Array(await readFile(path(c.file))))));
  for (const concurrency of [1, 3, 16]) {
    const batch = await preprocessBatch(inputs, { concurrency });
    t.deepEqual([...batch.shape], [names.length, 3, 224, 224]);
    t.is(batch.dtype, 'float32');
    const size = 3 * 224 * 224;
    for (const [i, c] of cases.entries()) {
      const single = await preprocess(inputs[i]!);
      t.deepEqual(batch.data.subarray(i * size, (i + 1) * size), single.data, `${c.name} at ${i} (concurrency ${concurrency})`);
    }
  }
  const options = { resize: 232, crop: 200, resampler: 'pillow' as const };
  const other = await preprocessBatch(inputs.slice(0, 2), options);
  t.deepEqual([...other.shape], [2, 3, 200, 200]);
  t.deepEqual(other.data.subarray(3 * 200 * 200), (await preprocess(inputs[1]!, options)).data);
});

test('fromTransforms takes a weights entry recipe: resnet50 IMAGENET1K_V2 resizes to 232', async (t) => {
  const options = fromTransforms(weightsEntry('resnet50', 'IMAGENET1K_V2').transforms);
  t.deepEqual(options, { resize: 232, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], interpolation: 'bilinear' });
  t.deepEqual(fromTransforms(weightsEntry('resnet18', 'IMAGENET1K_V1').transforms).resize, 256);
  const c = byName.get('jpeg-500x375-resize232')!;
  const ours = await preprocess(path(c.file), { ...options, resampler: 'pillow' });
  t.is(difference(ours.data, await reference(c)).max, 0);
  const bad = { ...weightsEntry('resnet50', 'IMAGENET1K_V2').transforms, interpolation: 'nearest' };
  const error = t.throws(() => fromTransforms(bad), { instanceOf: InvalidArgumentError });
  t.is(error.message, "Expected one of 'bilinear', 'bicubic', 'lanczos' for transforms.interpolation but received 'nearest' of type string");
  t.throws(() => fromTransforms({ ...bad, interpolation: 'bilinear', resizeSize: 0 }), {
    message: 'Expected positive integer for transforms.resizeSize but received 0 of type number',
  });
});

test('GIF: the first frame (the second is plain red)', async (t) => {
  const c = byName.get('gif-300x257')!;
  const meta = await sharp(path(c.file)).metadata();
  t.is(meta.pages, 2);
  const ours = await preprocess(path(c.file), { resampler: 'pillow' });
  t.is(difference(ours.data, await reference(c)).max, 0);
  const red = await preprocess(await sharp({ create: { width: 300, height: 257, channels: 3, background: '#ff0000' } }).png().toBuffer());
  t.true(difference(ours.data, red.data).mean > 0.5);
});

test('AVIF: sharp decodes it (encoded here from the PNG fixture), same tensor as the PNG', async (t) => {
  t.true(sharp.format.heif.input.buffer, "this sharp build cannot read HEIF/AVIF");
  const c = byName.get('png-avif-source-500x375')!;
  const avif = await sharp(path(c.file)).avif({ lossless: true, effort: 0 }).toBuffer();
  t.is((await sharp(avif).metadata()).compression, 'av1');
  const expected = await reference(c);
  const exact = await preprocess(avif, { resampler: 'pillow' });
  t.is(difference(exact.data, expected).max, 0, 'lossless AVIF decodes to the PNG bytes');
  const d = difference((await preprocess(avif)).data, expected);
  t.true(d.mean <= MEAN_BOUND && d.max <= MAX_BOUND, JSON.stringify(d));
  // Lossy AVIF: close, not equal. Measured mean 0.014, max 0.10 (quality 90, 4:2:0).
  const lossy = await sharp(path(c.file)).avif({ quality: 90, effort: 0 }).toBuffer();
  t.true(difference((await preprocess(lossy)).data, expected).mean < 0.03);
});

test('EXIF orientation is honoured: the rotated JPEG gives the upright picture', async (t) => {
  const rotated = byName.get('jpeg-exif6')!;
  const upright = byName.get('jpeg-upright-500x375')!;
  t.deepEqual(rotated.size, [375, 500]); // as stored
  t.is((await sharp(path(rotated.file)).metadata()).orientation, 6);
  const ours = await preprocess(path(rotated.file));
  const uprightTensor = await preprocess(path(upright.file));
  // The two JPEGs were compressed in different orientations, so they differ a little (measured
  // mean 0.023, max 0.30).
  const close = difference(ours.data, uprightTensor.data);
  t.log('rotated vs upright', close);
  t.true(close.mean < 0.035, `rotated vs upright: ${JSON.stringify(close)}`);
  // What torchvision's own loader would see (orientation ignored) is another picture.
  const ignored = await sharp(path(rotated.file)).png().toBuffer(); // no rotate(): stored pixels, no EXIF
  const far = difference((await preprocess(ignored)).data, uprightTensor.data);
  t.log('orientation ignored vs upright', far);
  t.true(far.mean > 10 * close.mean, `ignoring orientation: ${JSON.stringify(far)}`);
});

test('modes: grayscale gives equal channels before normalisation; RGBA keeps colour under alpha 0', async (t) => {
  const gray = await preprocess(path(byName.get('png-gray-400x300')!.file), { mean: [0, 0, 0], std: [1, 1, 1] });
  const plane = 224 * 224;
  t.deepEqual(gray.data.subarray(0, plane), gray.data.subarray(plane, 2 * plane));
  t.deepEqual(gray.data.subarray(0, plane), gray.data.subarray(2 * plane));
  // 2x2 opaque-free RGBA: alpha 0 everywhere, colour (200, 100, 50). Pillow's convert('RGB') keeps it.
  const rgba = Buffer.from(new Uint8Array(16).map((_, i) => [200, 100, 50, 0][i % 4]!));
  const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
  const x = await preprocess(png, { resize: 2, crop: 2, mean: [0, 0, 0], std: [1, 1, 1] });
  t.deepEqual([...x.data], [200, 200, 200, 200, 100, 100, 100, 100, 50, 50, 50, 50].map((v) => Math.fround(v / 255)));
});

test('crop larger than the resized image: zero padding as torchvision (value of a 0 byte)', async (t) => {
  const white = await sharp({ create: { width: 6, height: 3, channels: 3, background: '#ffffff' } }).png().toBuffer();
  // resize 3 -> 6x3; crop 5: width 6 -> offset round(0.5) = 0 (half to even), height 3 -> padded 1 above, 1 below.
  const x = await preprocess(white, { resize: 3, crop: 5, mean: [0, 0, 0], std: [1, 1, 1] });
  const rows = Array.from({ length: 5 }, (_, y) => [...x.data.subarray(y * 5, y * 5 + 5)]);
  t.deepEqual(rows, [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]);
});

test("centre crop offsets use Python's round (half to even)", async (t) => {
  // A 10x10 image whose pixel (x, y) is 10x + y, kept at its size (resize 10): the first pixel of
  // the crop tells where it starts.
  const ramp = Buffer.alloc(10 * 10 * 3);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) ramp.fill(x * 10 + y, (y * 10 + x) * 3, (y * 10 + x) * 3 + 3);
  const png = await sharp(ramp, { raw: { width: 10, height: 10, channels: 3 } }).png().toBuffer();
  const plain = { resize: 10, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
  // (10 - 7) / 2 = 1.5 -> 2; (10 - 5) / 2 = 2.5 -> 2; (10 - 3) / 2 = 3.5 -> 4.
  for (const [crop, start] of [[7, 2], [5, 2], [3, 4]] as const) {
    const x = await preprocess(png, { ...plain, crop });
    t.is(Math.round(x.data[0]! * 255), start * 10 + start, `crop ${crop}`);
  }
});

test('errors: undecodable inputs reject with ImageError naming the input and quoting sharp', async (t) => {
  const garbage = Buffer.from('this is not an image, just text');
  const e1 = await t.throwsAsync(preprocess(garbage), { instanceOf: ImageError });
  t.is(e1.message, `Cannot decode image from a buffer of ${garbage.length} bytes: Input buffer contains unsupported image format`);
  t.is(e1.code, 'ERR_RESNET_IMAGE');
  t.is(e1.input, `buffer of ${garbage.length} bytes`);
  t.true(e1 instanceof InvalidArgumentError);
  t.true(e1 instanceof ResNetError);
  t.is(e1.name, 'ImageError');

  const e2 = await t.throwsAsync(preprocess(new Uint8Array(0)), { instanceOf: ImageError });
  t.is(e2.message, 'Cannot decode image from a buffer of 0 bytes: Input Buffer is empty');

  const missing = join(dir, 'no-such-image.jpg');
  const e3 = await t.throwsAsync(preprocess(missing), { instanceOf: ImageError });
  t.is(e3.message, `Cannot decode image '${missing}': Input file is missing: ${missing}`);
  t.is(e3.input, missing);

  const jpeg = await readFile(path(byName.get('jpeg-500x375')!.file));
  const e4 = await t.throwsAsync(preprocess(jpeg.subarray(0, jpeg.length >> 1)), { instanceOf: ImageError });
  // libvips says 'VipsJpeg: Premature end of input file', but its error buffer is shared between
  // threads: with other sharp jobs running at the same time, sharp sometimes reports 'Unknown error'.
  t.regex(e4.message, /^Cannot decode image from a buffer of \d+ bytes: (.*Premature end|Unknown error)/);

  const e5 = await t.throwsAsync(preprocessBatch([path(byName.get('png-640x480')!.file), garbage]), { instanceOf: ImageError });
  t.is(e5.message, `Cannot decode image from a buffer of ${garbage.length} bytes (inputs[1]): Input buffer contains unsupported image format`);
  t.is(e5.index, 1);
});

test('errors: bad options and inputs are InvalidArgumentErrors in the package shape', async (t) => {
  const file = path(byName.get('png-224x224')!.file);
  const cases: Array<[unknown, string]> = [
    [{ resize: 0 }, 'Expected positive integer for resize but received 0 of type number'],
    [{ crop: 1.5 }, 'Expected positive integer for crop but received 1.5 of type number'],
    [{ resize: '256' }, "Expected positive integer for resize but received '256' of type string"],
    [{ mean: [0.5, 0.5] }, 'Expected an array of 3 finite numbers for mean but received [ 0.5, 0.5 ] of type object'],
    [{ std: [1, 0, 1] }, 'Expected an array of 3 positive finite numbers for std but received [ 1, 0, 1 ] of type object'],
    [{ interpolation: 'nearest' }, "Expected one of 'bilinear', 'bicubic', 'lanczos' for interpolation but received 'nearest' of type string"],
    [{ resampler: 'vips' }, "Expected one of 'sharp', 'pillow' for resampler but received 'vips' of type string"],
    [{ size: 224 }, "Unknown option 'size' for preprocess options; expected one of: resize, crop, fit, mean, std, interpolation, resampler, maxPixels"],
    [{ concurrency: 2 }, "Unknown option 'concurrency' for preprocess options; expected one of: resize, crop, fit, mean, std, interpolation, resampler, maxPixels"],
    [{ fit: 'contain' }, "Expected one of 'shorter-side', 'cover', 'fill' for fit but received 'contain' of type string"],
    [{ crop: [32, 48] }, "Expected a positive integer (a [height, width] crop needs fit 'cover' or 'fill') for crop but received [ 32, 48 ] of type object"],
    [{ fit: 'cover', crop: [32] }, 'Expected a positive integer or [height, width] for crop but received [ 32 ] of type object'],
    ['fast', "Expected an object for preprocess options but received 'fast' of type string"],
  ];
  for (const [options, message] of cases) {
    const error = await t.throwsAsync(preprocess(file, options as PreprocessOptions), { instanceOf: InvalidArgumentError });
    t.is(error.message, message);
    t.is(error.code, 'ERR_RESNET_INVALID_ARGUMENT');
  }
  await t.throwsAsync(preprocess(42 as unknown as string), {
    instanceOf: InvalidArgumentError,
    message: 'Expected a file path or a Uint8Array for input but received 42 of type number',
  });
  await t.throwsAsync(preprocess(''), { message: "Expected a file path or a Uint8Array for input but received '' of type string" });
  await t.throwsAsync(preprocessBatch([]), {
    instanceOf: InvalidArgumentError,
    message: 'Expected a non-empty array of file paths or Uint8Arrays for inputs but received [] of type object',
  });
  await t.throwsAsync(preprocessBatch([file, null as unknown as string]), {
    message: 'Expected a file path or a Uint8Array for inputs[1] but received null of type null',
  });
  await t.throwsAsync(preprocessBatch([file], { concurrency: 0 }), {
    message: 'Expected positive integer for concurrency but received 0 of type number',
  });
});
