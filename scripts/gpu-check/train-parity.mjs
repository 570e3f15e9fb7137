// Training parity of our trainer with the K SGD steps train_fixtures.py ran with this machine's
// PyTorch: same start weights (loaded from safetensors), same batches, same optimizer settings.
//   node train-parity.mjs --pkg DIR --fixtures DIR --device cuda|cpu --out FILE.json
// Run with NVIDIA_TF32_OVERRIDE=0 on CUDA (cuDNN may then not use TF32).
// float32 (contiguous): every step's loss and every final state-dict entry within 1e-4 relative
//   (max |ours - torch| / max(1, max |torch|), the CPU suite's training tolerance) of PyTorch's
//   strict run (TF32 off, cudnn.benchmark off); integer buffers (num_batches_tracked) exactly.
//   PyTorch's own spread (its benchmark-mode run against the strict one) is reported beside it.
// bfloat16 / float16 (channels_last, float16 with dynamic loss scaling as GradScaler): each entry
//   no further from PyTorch's float32 run than twice PyTorch's own autocast run is, plus 1e-3 of
//   the entry's scale; the losses likewise. The distance to PyTorch's autocast run is reported.
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadPackage, maxAbs, maxAbsDiff, parseArgs, readSafetensorsFile } from './common.mjs';

const args = parseArgs();
const device = args.device ?? 'cuda';
const manifest = JSON.parse(readFileSync(join(args.fixtures, 'train-manifest.json'), 'utf8'));
const { Tensor, createModel, runtime } = await loadPackage(args.pkg);
console.log(`train parity on ${device}: LibTorch ${runtime.libtorchVersion()}, ${manifest.steps} SGD steps, batch ${manifest.batch}, ${manifest.size}x${manifest.size}, NVIDIA_TF32_OVERRIDE=${process.env.NVIDIA_TF32_OVERRIDE ?? '(unset)'}`);

const rows = manifest.precisions.filter((p) => p !== 'float32-bench');
const results = [];
let failed = 0;
const fmt = (v) => (v === undefined || v === null ? '-' : v.toExponential(2));

/** Worst over the float entries of `final/<against>/`: max |actual - expected| / max(1, max |expected|). */
function worstRel(data, actualOf, against) {
  let worst = { rel: 0, key: null };
  for (const name of Object.keys(data)) {
    if (!name.startsWith(`final/${against}/`) || data[name].data instanceof BigInt64Array) continue;
    const key = name.slice(`final/${against}/`.length);
    const actual = actualOf(key);
    if (!actual) throw new Error(`no ${key} to compare with ${name}`);
    const rel = maxAbsDiff(actual.data, data[name].data) / Math.max(1, maxAbs(data[name].data));
    if (!(rel <= worst.rel)) worst = { rel, key };
  }
  return worst;
}

for (const fx of manifest.archs) {
  const data = readSafetensorsFile(join(args.fixtures, fx.data));
  const steps = manifest.steps;
  for (const precision of rows) {
    const layout = manifest.layouts[precision];
    const r = { arch: fx.arch, precision, layout, steps };
    const t0 = performance.now();
    let model;
    try {
      model = await createModel(fx.arch, { device, precision, memoryFormat: layout, numClasses: fx.numClasses, seed: 0 });
      await model.load(join(args.fixtures, fx.start));
      const trainer = model.trainer({ optimizer: { type: 'sgd', ...manifest.optimizer } });
      r.losses = [];
      for (let k = 0; k < steps; k++) {
        const x = data[`input/${k}`];
        const y = data[`labels/${k}`];
        const step = await trainer.step(new Tensor(x.data, x.shape), new Tensor(y.data, y.shape));
        r.losses.push(step.loss);
      }
      const state = await model.stateDict();
      const ours = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
      r.seconds = +((performance.now() - t0) / 1000).toFixed(2);
      // integer buffers exactly, every float entry by the rule of its precision
      for (const name of Object.keys(data)) {
        if (!name.startsWith('final/float32/')) continue;
        const key = name.slice('final/float32/'.length);
        if (!ours[key]) throw new Error(`our state dict has no ${key}`);
        if (data[name].data instanceof BigInt64Array && ours[key].data.join() !== data[name].data.join()) {
          throw new Error(`${key}: ${ours[key].data} != torch's ${data[name].data}`);
        }
      }
      const lossesOf = (run) => data[`loss/${run}`].data;
      const lossDiff = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))));
      const worst = worstRel(data, (k) => ours[k], 'float32');
      const oursVsStrict = Object.fromEntries(
        Object.keys(data).filter((n) => n.startsWith('final/float32/') && !(data[n].data instanceof BigInt64Array)).map((n) => {
          const key = n.slice('final/float32/'.length);
          return [key, maxAbsDiff(ours[key].data, data[n].data) / Math.max(1, maxAbs(data[n].data))];
        }),
      );
      r.worstRelToStrict = worst.rel;
      r.worstKey = worst.key;
      r.lossRelToStrict = lossDiff(r.losses, lossesOf('float32'));
      if (precision === 'float32') {
        r.bound = 1e-4;
        if (data['loss/float32-bench']) {
          r.torchBenchWorstRel = worstRel(data, (k) => data[`final/float32-bench/${k}`], 'float32').rel;
          r.torchBenchLossRel = lossDiff(lossesOf('float32-bench'), lossesOf('float32'));
        }
        r.pass = r.losses.every(Number.isFinite) && r.lossRelToStrict <= r.bound && worst.rel <= r.bound;
      } else {
        // per entry: ours vs fp32 <= 2 * (torch amp vs fp32) + 1e-3 (both relative to the entry's scale)
        const torchAmp = {};
        let worstExcess = -Infinity;
        let worstExcessKey = null;
        for (const [key, rel] of Object.entries(oursVsStrict)) {
          const amp = data[`final/${precision}/${key}`];
          const strict = data[`final/float32/${key}`];
          torchAmp[key] = maxAbsDiff(amp.data, strict.data) / Math.max(1, maxAbs(strict.data));
          const excess = rel - (2 * torchAmp[key] + 1e-3);
          if (excess > worstExcess) [worstExcess, worstExcessKey] = [excess, key];
        }
        r.torchAmpWorstRelToStrict = Math.max(...Object.values(torchAmp));
        r.worstRelToTorchAmp = worstRel(data, (k) => ours[k], precision).rel;
        r.torchAmpLossRelToStrict = lossDiff(lossesOf(precision), lossesOf('float32'));
        r.lossBound = 2 * r.torchAmpLossRelToStrict + 1e-3;
        r.worstExcessKey = worstExcessKey;
        r.worstExcess = worstExcess;
        r.torchLossScales = fx.runs[precision]?.lossScales ?? null;
        r.pass = r.losses.every(Number.isFinite) && r.lossRelToStrict <= r.lossBound && worstExcess <= 0;
      }
    } catch (error) {
      r.pass = false;
      r.error = String(error?.stack ?? error).split('\n').slice(0, 6).join('\n');
    } finally {
      model?.dispose();
    }
    if (!r.pass) failed++;
    results.push(r);
    const detail =
      r.error ??
      (precision === 'float32'
        ? `losses rel ${fmt(r.lossRelToStrict)}, weights worst rel ${fmt(r.worstRelToStrict)} (${r.worstKey}) (bound 1e-4); torch benchmark-mode vs strict: losses ${fmt(r.torchBenchLossRel)}, weights ${fmt(r.torchBenchWorstRel)}`
        : `vs torch fp32: losses ${fmt(r.lossRelToStrict)} (bound ${fmt(r.lossBound)}), weights worst ${fmt(r.worstRelToStrict)}; torch ${precision} vs fp32 ${fmt(r.torchAmpWorstRelToStrict)}; ours vs torch ${precision} ${fmt(r.worstRelToTorchAmp)}; worst excess over the bound ${fmt(r.worstExcess)} (${r.worstExcessKey})`);
    console.log(`  ${(r.pass ? 'ok' : 'FAIL').padEnd(4)} ${fx.arch} ${precision} ${layout}: ${detail} [${r.seconds ?? '-'} s]`);
  }
}

writeFileSync(args.out, JSON.stringify({ device, manifest: { ...manifest, archs: manifest.archs.map((a) => ({ ...a })) }, rows: results, failed, pass: failed === 0 }, null, 1));
console.log(`train parity: ${results.length - failed}/${results.length} rows without failure`);
process.exitCode = failed ? 1 : 0;
