// The parts of the API that parity and the benchmark do not reach, on the device: moving a model
// there after creation and back, features(), train-mode forwards, an AdamW step (optimizer state
// on the device), evaluate(), saving and loading from the device, and two models sharing it.
//   node api-check.mjs --pkg DIR --device cuda|cpu --out FILE.json
// Run with NVIDIA_TF32_OVERRIDE=0 on CUDA: device results are compared with the CPU's within 1e-4
// relative (max |a - b| / max(1, max |b|)).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPackage, maxAbs, maxAbsDiff, parseArgs, randomNormal } from './common.mjs';

const args = parseArgs();
const device = args.device ?? 'cuda';
const { Tensor, createModel } = await loadPackage(args.pkg);
const { evaluate } = await import(pathToFileURL(join(args.pkg, 'dist', 'lib', 'train', 'fit.js')).href);
const rel = (a, b) => maxAbsDiff(a, b) / Math.max(1, maxAbs(b));
const checks = [];
async function check(name, fn) {
  const t0 = performance.now();
  const c = { name };
  try {
    Object.assign(c, await fn());
    c.pass = c.pass ?? true;
  } catch (error) {
    c.pass = false;
    c.error = String(error?.stack ?? error).split('\n').slice(0, 4).join('\n');
  }
  c.seconds = +((performance.now() - t0) / 1000).toFixed(2);
  checks.push(c);
  console.log(`  ${c.pass ? 'ok  ' : 'FAIL'} ${name}: ${c.error ?? c.detail ?? ''} [${c.seconds} s]`);
}

const x = new Tensor(randomNormal(2 * 3 * 64 * 64, 11), [2, 3, 64, 64]);
const labels = new BigInt64Array([3n, 7n]);
const tmp = mkdtempSync(join(tmpdir(), 'gpu-api-'));
const model = await createModel('resnet18', { numClasses: 10, seed: 3 });
let onDevice = null; // eval logits on the device after the training step (set by the save check)
try {
  const cpuLogits = (await model.forward(x)).data;
  const cpuFeatures = await model.features(x, { layers: ['layer2', 'layer4'] });

  await check(`to('${device}') after creation: eval forward equals the CPU's`, async () => {
    await model.to(device);
    const r = rel((await model.forward(x)).data, cpuLogits);
    return { device: model.device, rel: r, pass: model.device.startsWith(device.split(':')[0]) && r <= 1e-4, detail: `device ${model.device}, rel ${r.toExponential(2)}` };
  });
  await check(`inference engine on ${device}`, async () => {
    const engine = await model.inferenceEngine();
    await model.setInferenceEngine(false);
    const r = rel((await model.forward(x)).data, cpuLogits);
    await model.setInferenceEngine('auto');
    return { engine, rel: r, pass: r <= 1e-4, detail: `'auto' runs ${engine}; plain modules rel ${r.toExponential(2)}` };
  });
  await check('features() equal the CPU\'s', async () => {
    const maps = await model.features(x, { layers: ['layer2', 'layer4'] });
    const worst = Math.max(...Object.keys(cpuFeatures).map((k) => rel(maps[k].data, cpuFeatures[k].data)));
    const shapes = Object.values(maps).map((m) => m.shape.join('x')).join(', ');
    return { rel: worst, pass: worst <= 1e-4, detail: `${shapes}, worst rel ${worst.toExponential(2)}` };
  });
  await check('train-mode forward, AdamW step, evaluate()', async () => {
    await model.train();
    const trainOut = (await model.forward(x)).data;
    await model.eval();
    const trainer = model.trainer({ optimizer: { type: 'adamw', lr: 1e-3 } });
    const step = await trainer.step(x, labels);
    const state = await trainer.state();
    const stateKeys = Object.keys(state.optimizer).length;
    const source = { length: 2, async *batches() { yield { images: x, labels: new Tensor(labels, [2]) }; } };
    const ev = await evaluate(model, source);
    const ok = trainOut.every(Number.isFinite) && Number.isFinite(step.loss) && stateKeys > 0 && ev.count === 2;
    return { loss: step.loss, optimizerTensors: stateKeys, evaluate: ev, pass: ok, detail: `loss ${step.loss.toFixed(4)}, ${stateKeys} optimizer tensors, evaluate ${JSON.stringify(ev)}` };
  });
  await check(`save() from ${device}, load() into a CPU model: same logits`, async () => {
    const file = join(tmp, 'w.safetensors');
    await model.save(file);
    onDevice = (await model.forward(x)).data;
    const other = await createModel('resnet18', { numClasses: 10, seed: 99 });
    try {
      await other.load(file);
      const r = rel((await other.forward(x)).data, onDevice);
      return { rel: r, pass: r <= 1e-4, detail: `rel ${r.toExponential(2)}` };
    } finally {
      other.dispose();
    }
  });
  await check(`two models on ${device} at once equal each alone`, async () => {
    const a = await createModel('resnet50', { numClasses: 10, seed: 5, device });
    const b = await createModel('resnet18', { numClasses: 10, seed: 6, device });
    try {
      const big = new Tensor(randomNormal(8 * 3 * 128 * 128, 13), [8, 3, 128, 128]);
      const aloneA = (await a.forward(big)).data;
      const aloneB = (await b.forward(big)).data;
      const [togetherA, togetherB] = await Promise.all([a.forward(big), b.forward(big)]);
      const r = Math.max(rel(togetherA.data, aloneA), rel(togetherB.data, aloneB));
      return { rel: r, pass: r <= 1e-4, detail: `rel ${r.toExponential(2)}` };
    } finally {
      a.dispose();
      b.dispose();
    }
  });
  await check(`to('cpu') back: forward equals the last one on ${device}`, async () => {
    if (!onDevice) throw new Error('needs the save check');
    await model.to('cpu');
    const r = rel((await model.forward(x)).data, onDevice);
    return { rel: r, pass: model.device === 'cpu' && r <= 1e-4, detail: `device ${model.device}, rel ${r.toExponential(2)}` };
  });
} finally {
  model.dispose();
  rmSync(tmp, { recursive: true, force: true });
}
const failed = checks.filter((c) => !c.pass).length;
writeFileSync(args.out, JSON.stringify({ device, checks, failed }, null, 1));
console.log(`api: ${checks.length - failed}/${checks.length} checks pass`);
process.exitCode = failed ? 1 : 0;
