// The fine-tune -> save -> predict -> serve path with real files, as a user walks it: train on an
// ImageFolder, fine-tune that checkpoint with --freeze-up-to, then `resnet predict` and the server
// answer with the folder's class names, from the same input tensors as training's evaluation.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { ImageFolder, loadModel, loadWeights, preprocessBatch, type ResNet } from '../lib/index.ts';
import { createServer } from '../lib/serve/server.ts';

const run = promisify(execFile);
const cli = (args: string[]) => run(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });

let root: string;
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const classes = ['apple', 'banana', 'cherry'];
const colours: Record<string, [number, number, number]> = { apple: [30, 170, 40], banana: [230, 210, 40], cherry: [170, 20, 50] };

/** A noisy picture of one colour, of varying size (so the fitted decode has to scale and crop). */
async function picture(colour: [number, number, number], seed: number, orientation?: number): Promise<Buffer> {
  const width = 40 + ((seed * 7) % 30);
  const height = 36 + ((seed * 11) % 30);
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, colour[i % 3]! + (((i * 2654435761 + seed) >>> 24) % 41) - 20));
  // A stripe on the left edge makes the EXIF rotation visible in the decoded pixels.
  for (let y = 0; y < height; y++) for (let x = 0; x < 6; x++) pixels.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return (orientation ? image.withMetadata({ orientation }) : image).jpeg({ quality: 92 }).toBuffer();
}

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'resnet-workflow-'));
  for (const [split, count] of [['train', 10], ['val', 4]] as const) {
    for (const name of classes) {
      await mkdir(join(root, split, name), { recursive: true });
      for (let i = 0; i < count; i++) {
        // One phone-style photo per validation class: stored sideways with EXIF orientation 6.
        const orientation = split === 'val' && i === 0 ? 6 : undefined;
        await writeFile(join(root, split, name, `${i}.jpg`), await picture(colours[name]!, i + (split === 'val' ? 100 : 0), orientation));
      }
    }
  }
});

test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test.serial('train, fine-tune with --freeze-up-to, predict and serve: the folder\'s classes and its preprocessing all the way', async (t) => {
  const base = join(root, 'base.safetensors');
  const tuned = join(root, 'tuned.safetensors');
  await cli(['train', '--dataset', 'folder', '--root', root, '--size', '32', '--arch', 'resnet20', '--epochs', '2', '--batch-size', '10', '--lr', '0.05', '--out', base]);
  const fine = await cli([
    'train', '--dataset', 'folder', '--root', root, '--size', '32', '--arch', 'resnet20', '--epochs', '2', '--batch-size', '10', '--lr', '0.02',
    '--weights', base, '--freeze-up-to', 'layer2', '--json', '--out', tuned,
  ]);
  const summary = JSON.parse(fine.stdout) as { epochs: unknown[]; weights: string };
  t.is(summary.epochs.length, 2);
  t.is(summary.weights, tuned);

  // Frozen up to layer2: the stem and layers 1-2 are the checkpoint's, layer3 and the head moved.
  const [before, after] = await Promise.all([loadWeights(base), loadWeights(tuned)]);
  const same = (key: string) => Buffer.compare(bytes(before[key]!.data), bytes(after[key]!.data)) === 0;
  t.true(same('conv1.weight'));
  t.true(same('layer1.0.conv1.weight'));
  t.true(same('layer2.2.conv2.weight'));
  t.false(same('layer3.0.conv1.weight'));
  t.false(same('fc.weight'));

  // The saved file describes itself.
  const model: ResNet = await loadModel(tuned);
  t.teardown(() => model.dispose());
  t.is(model.arch, 'resnet20');
  t.deepEqual(model.classes, classes);
  const train = await ImageFolder.load({ root: join(root, 'train'), size: 32 });
  t.deepEqual(model.preprocessing, { fit: 'cover', crop: 32, mean: [...train.mean], std: [...train.std] });

  // Serving's input tensor is training's evaluation tensor, bit for bit (EXIF-rotated photos included).
  const val = await ImageFolder.load({ root: join(root, 'val'), size: 32, mean: [...train.mean], std: [...train.std] });
  const files = Array.from({ length: val.length }, (_, i) => val.get(i).source!);
  let evaluated: Float32Array | undefined;
  for await (const batch of val.batches({ batchSize: val.length })) evaluated = batch.images.data as Float32Array;
  const served = await preprocessBatch(files, model.preprocessing!);
  t.deepEqual(served.shape, [val.length, 3, 32, 32]);
  t.true(bytes(served.data).equals(bytes(evaluated!)));

  // resnet predict: class names, and the same answers as classify().
  const predicted = JSON.parse((await cli(['predict', join(root, 'val'), '--weights', tuned, '--topk', '3', '--json'])).stdout) as {
    results: Array<{ file: string; predictions: Array<{ label: string; index: number; score: number }> }>;
  };
  t.is(predicted.results.length, val.length);
  const direct = await model.classify(files, { topk: 3 });
  predicted.results.forEach((r, i) => {
    t.is(r.file, files[i]!);
    t.deepEqual(r.predictions.map((p) => p.label).sort(), [...classes].sort());
    t.deepEqual(r.predictions.map((p) => p.label), direct[i]!.map((p) => p.label));
  });

  // The server: the same labels for the same image, with no labels or preprocessing passed to it.
  const server = createServer({ replicas: [model] });
  t.teardown(() => server.close());
  const address = await server.listen(0, '127.0.0.1');
  const form = new FormData();
  const { readFile } = await import('node:fs/promises');
  form.append('image', new Blob([await readFile(files[0]!)]), 'photo.jpg');
  const response = await fetch(`${address}/v1/classify?topk=3`, { method: 'POST', body: form });
  t.is(response.status, 200);
  const body = (await response.json()) as { results: Array<{ predictions: Array<{ label: string; score: number }> }> };
  t.deepEqual(body.results[0]!.predictions.map((p) => p.label), direct[0]!.map((p) => p.label));
  t.true(Math.abs(body.results[0]!.predictions[0]!.score - direct[0]![0]!.score) < 1e-6);
});

test('an EXIF-rotated photo is decoded upright by ImageFolder, as by preprocess()', async (t) => {
  const upright = await picture(colours.apple!, 7);
  const { width, height } = await sharp(upright).metadata();
  // The same picture stored sideways (rotated 90 degrees counter-clockwise), tagged orientation 6.
  const sideways = await sharp(await sharp(upright).rotate(-90).toBuffer()).withMetadata({ orientation: 6 }).jpeg({ quality: 92 }).toBuffer();
  const dir = join(root, 'exif', 'apple');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'a-upright.jpg'), upright);
  await writeFile(join(dir, 'b-sideways.jpg'), sideways);
  const set = await ImageFolder.load({ root: join(root, 'exif'), size: [height!, width!], resize: 'stretch' });
  // The white stripe is the picture's left edge in both: the sideways file was turned upright.
  const plane = height! * width!;
  const mean = (image: Uint8Array, inside: (x: number, y: number) => boolean) => {
    let sum = 0;
    let n = 0;
    for (let c = 0; c < 3; c++) for (let y = 0; y < height!; y++) for (let x = 0; x < width!; x++) if (inside(x, y)) (sum += image[c * plane + y * width! + x]!), n++;
    return sum / n;
  };
  for (const i of [0, 1]) {
    const image = set.get(i).image.data;
    t.true(mean(image, (x) => x < 4) > 230, `image ${i}: left edge white`);
    t.true(mean(image, (x, y) => y < 4 && x >= 8) < 200, `image ${i}: top edge not white`);
  }
});
