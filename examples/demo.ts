// Demo: trains the paper's resnet20 on Fashion-MNIST (Debian's dataset-fashion-mnist) for one
// epoch on the CPU, reports test accuracy, saves the weights and classifies a few test images.
//   npm run demo [-- --epochs N --batch-size B --out DIR]
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate, FashionMNIST, fit, getNumThreads, libtorchVersion, resnet20, Tensor } from '../lib/index.ts';

const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    'batch-size': { type: 'string', default: '128' },
    out: { type: 'string', default: 'demo-output' },
  },
});
const epochs = Number(values.epochs);
const batchSize = Number(values['batch-size']);

const started = performance.now();
const [train, test] = await Promise.all([FashionMNIST.load({ split: 'train' }), FashionMNIST.load({ split: 'test' })]);
console.log(`Fashion-MNIST: ${train.length} training and ${test.length} test images, ${train.classes.length} classes`);
console.log(`LibTorch ${libtorchVersion()}, ${getNumThreads()} threads`);

const model = await resnet20({ inChannels: 1, numClasses: 10, seed: 0 });
console.log(`resnet20 (option-A shortcuts): ${model.numParameters().toLocaleString('en-US')} parameters`);

const itersPerEpoch = Math.floor(train.length / batchSize);
const trainer = model.trainer({
  optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, excludeNormAndBiasFromWeightDecay: true },
  schedule: { type: 'cosine', totalIters: epochs * itersPerEpoch, warmupIters: Math.min(200, itersPerEpoch), warmupStartFactor: 0.1 },
  loss: { labelSmoothing: 0.05 },
});

const report = await fit(model, {
  train,
  epochs,
  batchSize,
  trainer,
  seed: 0,
  progressEvery: 50,
  ...(epochs > 1 && { augment: { crop: { padding: 2 }, hflip: true } }),
  onProgress: (p) =>
    process.stdout.write(
      `\repoch ${p.epoch + 1}/${p.epochs}  batch ${p.batch}/${p.batches}  loss ${p.loss.toFixed(3)}  acc ${p.accuracy.toFixed(3)}  lr ${p.lr.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s   ${p.batch === p.batches ? '\n' : ''}`,
    ),
});
const trainSeconds = report.seconds;

const result = await evaluate(model, test, { batchSize: 500 });
console.log(`test: accuracy ${result.top1.toFixed(4)}, top-5 ${result.top5.toFixed(4)}, loss ${result.loss.toFixed(4)} (${result.count} images)`);

await mkdir(values.out, { recursive: true });
const saved = join(values.out, 'resnet20-fashion-mnist.safetensors');
await model.save(saved);
console.log(`weights saved to ${saved}`);

// A few predictions on test images, straight through forward().
const shown = [0, 1, 2, 3, 4, 5, 6, 7];
const normalised = new Float32Array(shown.length * 28 * 28);
const labels: number[] = [];
shown.forEach((index, n) => {
  const { image, label } = test.get(index);
  labels.push(label);
  for (let i = 0; i < 28 * 28; i++) normalised[n * 784 + i] = (image.data[i]! / 255 - test.mean[0]!) / test.std[0]!;
});
const logits = await model.forward(new Tensor(normalised, [shown.length, 1, 28, 28]));
shown.forEach((index, n) => {
  const row = logits.data.subarray(n * 10, n * 10 + 10);
  const predicted = row.indexOf(Math.max(...row));
  const mark = predicted === labels[n] ? 'ok ' : 'XX ';
  console.log(`  ${mark} test image ${index}: predicted ${test.classes[predicted]}, truth ${test.classes[labels[n]!]}`);
});
model.dispose();
console.log(`done: training ${trainSeconds.toFixed(0)} s, total ${((performance.now() - started) / 1000).toFixed(0)} s`);
