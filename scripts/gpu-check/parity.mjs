// Parity of our models with the logits fixtures.py computed on this machine's PyTorch.
//   node parity.mjs --pkg DIR --fixtures DIR --device cuda|cpu --out FILE.json [--mode strict|tf32]
// strict: float32 rows (run this process with NVIDIA_TF32_OVERRIDE=0 on CUDA, so that cuDNN
//   cannot use TF32) must be within 1e-4 * max(1, max|torch|) of PyTorch's float32 logits (TF32
//   off); bfloat16 / float16 autocast rows must be no further from those float32 logits than
//   twice PyTorch's own autocast error, plus 1e-3 * max(1, max|torch|).
// tf32: float32 rows with LibTorch's defaults (TF32 allowed in cuDNN), reported, not judged.
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { loadPackage, maxAbs, maxAbsDiff, parseArgs, readSafetensorsFile } from './common.mjs';

const args = parseArgs();
const device = args.device ?? 'cuda';
const mode = args.mode ?? 'strict';
const cuda = device.startsWith('cuda');
const manifest = JSON.parse(readFileSync(join(args.fixtures, 'manifest.json'), 'utf8'));
const pkg = await loadPackage(args.pkg);
const { Tensor, runtime, createModel } = pkg;

const env = {
  libtorch: runtime.libtorchVersion(),
  cudaCompiled: pkg.native.cudaCompiled?.() ?? null,
  cudaAvailable: runtime.cudaAvailable(),
  cudaDeviceCount: runtime.cudaDeviceCount(),
  NVIDIA_TF32_OVERRIDE: process.env.NVIDIA_TF32_OVERRIDE ?? null,
};
console.log(`parity (${mode}) on ${device}: LibTorch ${env.libtorch}, cudaCompiled ${env.cudaCompiled}, cudaAvailable ${env.cudaAvailable}, devices ${env.cudaDeviceCount}, NVIDIA_TF32_OVERRIDE=${env.NVIDIA_TF32_OVERRIDE ?? '(unset)'}`);

const strictRows = [
  { precision: 'float32', layout: 'contiguous', engine: true, weights: 'pth' },
  { precision: 'float32', layout: 'channels_last', engine: true, weights: 'safetensors' },
  { precision: 'float32', layout: 'contiguous', engine: false, weights: 'safetensors' },
  { precision: 'bfloat16', layout: 'contiguous', engine: true, weights: 'safetensors' },
  { precision: 'bfloat16', layout: 'channels_last', engine: true, weights: 'pth' },
  { precision: 'float16', layout: 'contiguous', engine: true, weights: 'safetensors' },
  { precision: 'float16', layout: 'channels_last', engine: true, weights: 'safetensors' },
];
const tf32Rows = [
  { precision: 'float32', layout: 'contiguous', engine: true, weights: 'safetensors' },
  { precision: 'float32', layout: 'channels_last', engine: true, weights: 'safetensors' },
];
const plan = (mode === 'tf32' ? tf32Rows : strictRows).filter((r) => cuda || r.precision !== 'float16');

const results = [];
let failed = 0;
for (const fx of manifest.archs) {
  const data = readSafetensorsFile(join(args.fixtures, fx.data));
  const input = new Tensor(data.input.data, data.input.shape);
  const ref = (p, l) => data[`ref/${p}/${l}`]?.data;
  const strict = ref('float32', 'contiguous');
  const scale = Math.max(1, maxAbs(strict));
  for (const row of plan) {
    const name = `${fx.arch} ${row.precision} ${row.layout}${row.engine ? '' : ' (no engine)'} <- .${row.weights === 'pth' ? 'pth' : 'safetensors'}`;
    const r = { arch: fx.arch, ...row, mode, scale };
    const t0 = performance.now();
    let model;
    try {
      model = await createModel(fx.arch, { device, precision: row.precision, memoryFormat: row.layout, seed: 0, numClasses: fx.numClasses });
      if (!row.engine) await model.setInferenceEngine(false);
      await model.load(join(args.fixtures, row.weights === 'pth' ? fx.pth : fx.safetensors));
      r.numParameters = model.numParameters();
      r.modelDevice = model.device;
      const out = (await model.forward(input)).data;
      r.seconds = +((performance.now() - t0) / 1000).toFixed(2);
      r.finite = out.every(Number.isFinite);
      r.maxAbsOurs = maxAbs(out);
      r.diffToStrict = maxAbsDiff(out, strict);
      if (row.precision === 'float32' && mode === 'strict') {
        r.diffToSameLayout = maxAbsDiff(out, ref('float32', row.layout));
        const bench = ref('float32-bench', row.layout);
        r.torchBenchDiffToStrict = bench ? maxAbsDiff(bench, strict) : null; // PyTorch's own spread across cuDNN algorithms
        r.bound = 1e-4 * scale;
        r.pass = r.finite && r.diffToStrict <= r.bound;
      } else if (row.precision === 'float32') {
        const tf = ref('float32-tf32', row.layout);
        r.diffToTorchTf32 = tf ? maxAbsDiff(out, tf) : null;
        r.torchTf32DiffToStrict = tf ? maxAbsDiff(tf, strict) : null;
        r.usesTf32 = r.diffToStrict > 1e-4 * scale;
        r.pass = null; // reported, not judged
      } else {
        const amp = ref(row.precision, row.layout);
        r.diffToTorchAmp = maxAbsDiff(out, amp);
        r.torchAmpDiffToStrict = maxAbsDiff(amp, strict);
        r.bound = 2 * r.torchAmpDiffToStrict + 1e-3 * scale;
        r.pass = r.finite && r.diffToStrict <= r.bound;
      }
      if (r.numParameters !== fx.numParameters) {
        r.pass = false;
        r.error = `numParameters ${r.numParameters} != torch's ${fx.numParameters}`;
      }
    } catch (error) {
      r.pass = false;
      r.error = String(error?.stack ?? error).split('\n').slice(0, 6).join('\n');
    } finally {
      model?.dispose();
    }
    if (r.pass === false) failed++;
    results.push(r);
    const fmt = (v) => (v === undefined || v === null ? '-' : v.toExponential(2));
    const verdict = r.pass === null ? 'info' : r.pass ? 'ok' : 'FAIL';
    const detail =
      r.error ??
      (r.precision === 'float32'
        ? mode === 'strict'
          ? `max|ours-torch| ${fmt(r.diffToStrict)} (bound ${fmt(r.bound)})${r.torchBenchDiffToStrict != null ? `, torch benchmark-mode vs heuristic ${fmt(r.torchBenchDiffToStrict)}` : ''}`
          : `max|ours-torch fp32| ${fmt(r.diffToStrict)}, max|ours-torch tf32| ${fmt(r.diffToTorchTf32)}, torch tf32 vs fp32 ${fmt(r.torchTf32DiffToStrict)}`
        : `max|ours-torch amp| ${fmt(r.diffToTorchAmp)}, ours vs fp32 ${fmt(r.diffToStrict)}, torch amp vs fp32 ${fmt(r.torchAmpDiffToStrict)} (bound ${fmt(r.bound)})`);
    console.log(`  ${verdict.padEnd(4)} ${name}: ${detail} [${r.seconds ?? '-'} s]`);
  }
}

const summary = { mode, device, env, manifest: { ...manifest, archs: undefined }, rows: results, failed, pass: failed === 0 };
writeFileSync(args.out, JSON.stringify(summary, null, 1));
console.log(`parity (${mode}): ${results.length - failed}/${results.length} rows without failure`);
process.exitCode = failed ? 1 : 0;
