// Demo: a random-initialised resnet50 classifies a batch of 8 synthetic 224x224 images on the CPU,
// with timings. (The training demo on Fashion-MNIST replaces this once training lands.)
import { getNumThreads, libtorchVersion, resnet50, Tensor } from '../lib/index.ts';

const batch = 8;
const model = await resnet50({ seed: 0 });
console.log(`LibTorch ${libtorchVersion()}, ${getNumThreads()} intra-op threads`);
console.log(`${model.arch}: ${model.numParameters().toLocaleString('en-US')} parameters, device ${model.device}`);

// A smooth synthetic image per sample, normalised like ImageNet inputs.
const pixels = new Float32Array(batch * 3 * 224 * 224);
for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i / 997) * 1.5;
const x = new Tensor(pixels, [batch, 3, 224, 224]);

const times: number[] = [];
let logits = await model.forward(x);
for (let run = 0; run < 5; run++) {
  const start = performance.now();
  logits = await model.forward(x);
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;

for (let n = 0; n < 3; n++) {
  const row = logits.data.subarray(n * 1000, (n + 1) * 1000);
  const top = [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, 3);
  console.log(`image ${n}: top classes ${top.map((c) => `${c} (${row[c]!.toFixed(3)})`).join(', ')}`);
}
console.log(`forward of [${x.shape.join(', ')}]: median ${median.toFixed(0)} ms over 5 runs, ${((batch * 1000) / median).toFixed(1)} images/s`);
model.dispose();
