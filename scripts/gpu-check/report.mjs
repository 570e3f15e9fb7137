// Gathers what the steps of scripts/gpu-check.sh left in OUT_DIR into report.md and results.json.
//   node report.mjs --dir OUT_DIR --mode gpu|dry
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from './common.mjs';

const args = parseArgs();
const dir = args.dir;
const mode = args.mode ?? 'gpu';
const cuda = mode === 'gpu';
const read = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : null);

const steps = existsSync(join(dir, 'steps.tsv'))
  ? readFileSync(join(dir, 'steps.tsv'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name, status, seconds, note] = l.split('\t');
        return { name, status, seconds: Number(seconds), note: note ?? '' };
      })
  : [];
const env = read('env.json');
const build = read('build.json');
const fixtures = read('fixtures/manifest.json');
const strict = read('parity-strict.json');
const tf32 = read('parity-tf32.json');
const torchBench = read('bench-torch.json');
const compileBench = read('bench-compile.json');
const trainParity = read('train-parity.json');
const api = read('api.json');
const oursDir = join(dir, 'bench-ours');
const ours = existsSync(oursDir)
  ? readdirSync(oursDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(oursDir, f), 'utf8')))
  : [];

const e = (v) => (v === undefined || v === null ? '–' : Number(v).toExponential(2));
const f1 = (v) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(1));
const f0 = (v) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(0));
const lines = [];
lines.push(`# libtorch-resnet GPU check (${cuda ? 'CUDA' : 'dry run on the CPU'})`, '');
lines.push(`- when: ${new Date().toISOString()}`);
if (env) {
  lines.push(`- node ${env.node}, LibTorch ${env.libtorch} (addon: cudaCompiled ${env.cudaCompiled}, cudaAvailable ${env.cudaAvailable}, devices ${env.cudaDeviceCount})${env.gpu ? `, GPU ${env.gpu}` : ''}`);
}
if (build) lines.push(`- build: ${build.libtorchSource ?? '?'}; ${build.cuda ? 'CUDA build (torch_cuda linked)' : 'CPU build'}; ${build.seconds} s on ${build.jobs} jobs${build.cxx20 ? '; C++20 (forced by the launcher)' : ''}`);
if (torchBench?.env) {
  const t = torchBench.env;
  lines.push(`- Python baseline: torch ${t.torch}${t.torch_cuda ? ` (CUDA ${t.torch_cuda}, cuDNN ${t.cudnn})` : ''}, model from ${t.model}; TF32 defaults ${JSON.stringify(t.tf32)}`);
}
if (fixtures) lines.push(`- fixtures: ${fixtures.reference}, torch ${fixtures.torch}, batch ${fixtures.batch}×3×${fixtures.size}×${fixtures.size}`);
lines.push('', '## Steps', '', '| step | status | seconds | note |', '|---|---|---|---|');
for (const s of steps) lines.push(`| ${s.name} | ${s.status} | ${f1(s.seconds)} | ${s.note} |`);

if (strict) {
  lines.push('', `## Parity (${strict.env?.NVIDIA_TF32_OVERRIDE === '0' ? 'NVIDIA_TF32_OVERRIDE=0: no TF32 in cuDNN/cuBLAS for our process' : 'default math mode'})`, '');
  lines.push('float32 rows: bound 1e-4·max(1, max|torch|) against PyTorch float32 with TF32 off. Autocast rows: |ours − torch fp32| ≤ 2·|torch autocast − torch fp32| + 1e-3·max(1, max|torch|).', '');
  lines.push('"same mode" = PyTorch in the same precision and layout. "torch spread" = for float32, PyTorch with cudnn.benchmark on (the algorithm choice our addon makes) minus PyTorch with the default heuristics; for autocast rows, PyTorch autocast minus PyTorch float32.', '');
  lines.push('| arch | precision | layout | engine | weights | max abs ours−torch (same mode) | max abs ours−torch fp32 | torch spread | bound | result |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const r of strict.rows) {
    const same = r.precision === 'float32' ? r.diffToSameLayout : r.diffToTorchAmp;
    const spread = r.precision === 'float32' ? r.torchBenchDiffToStrict : r.torchAmpDiffToStrict;
    lines.push(
      `| ${r.arch} | ${r.precision} | ${r.layout} | ${r.engine ? 'on' : 'off'} | .${r.weights} | ${e(same)} | ${e(r.diffToStrict)} | ${e(spread)} | ${e(r.bound)} | ${r.error ? `FAIL: ${r.error.split('\n')[0]}` : r.pass ? 'ok' : 'FAIL'} |`,
    );
  }
}
if (tf32) {
  lines.push('', '## float32 with LibTorch\'s default math mode (reported, not judged)', '');
  lines.push('| arch | layout | max abs ours−torch fp32 (TF32 off) | max abs ours−torch (TF32 defaults) | torch TF32−fp32 | ours uses TF32? |', '|---|---|---|---|---|---|');
  for (const r of tf32.rows) {
    lines.push(`| ${r.arch} | ${r.layout} | ${e(r.diffToStrict)} | ${e(r.diffToTorchTf32)} | ${e(r.torchTf32DiffToStrict)} | ${r.error ? `error: ${r.error.split('\n')[0]}` : r.usesTf32 ? 'yes (diff > 1e-4 rel.)' : 'no'} |`);
  }
}

if (trainParity) {
  const m = trainParity.manifest;
  lines.push('', `## Training parity: ${m.steps} SGD steps (lr ${m.optimizer.lr}, momentum ${m.optimizer.momentum}, weight decay ${m.optimizer.weightDecay}), batch ${m.batch}×3×${m.size}×${m.size}, 10 classes`, '');
  lines.push('Relative = max |a − b| / max(1, max |b|) per state-dict entry (weights and BatchNorm statistics), worst entry shown; losses likewise, worst step. float32 (TF32 off in our process and in PyTorch): the first loss within 1e-4 of PyTorch\'s strict run (cudnn.benchmark off); after one step and after all steps, the worst entry and the worst loss within 2·(PyTorch\'s own spread) + 1e-4, the spread being the larger of PyTorch with cudnn.benchmark on and PyTorch with the first batch moved by one ulp, against its strict run. Autocast rows: within 2·|torch autocast − torch fp32| + 1e-3 of PyTorch float32.', '');
  lines.push('| arch | precision | layout | after 1 step: ours vs torch fp32 (torch spread) | after all: losses ours vs torch fp32 | weights ours vs torch fp32 (worst entry) | torch spread (losses / weights) | ours vs torch same precision | worst excess over the bound | result |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const r of trainParity.rows) {
    const first = r.precision === 'float32' ? `${e(r.afterOneStepWorstRel)} (${e(r.torchSpreadAfterOneStep)})` : '–';
    const same = r.precision === 'float32' ? r.worstRelToStrict : r.worstRelToTorchAmp;
    lines.push(`| ${r.arch} | ${r.precision} | ${r.layout} | ${first} | ${e(r.lossRelToStrict)} | ${e(r.worstRelToStrict)} (${r.worstKey ?? '–'}) | ${e(r.torchSpreadLossRel)} / ${e(r.torchSpreadWorstRel)} | ${e(same)} | ${e(r.worstExcess)} (${r.worstExcessKey ?? '–'}) | ${r.error ? `FAIL: ${r.error.split('\n')[0]}` : r.pass ? 'ok' : 'FAIL'} |`);
  }
}

if (api) {
  lines.push('', `## API on ${api.device} (compared with the CPU within 1e-4 relative)`, '', '| check | result | detail |', '|---|---|---|');
  for (const c of api.checks) lines.push(`| ${c.name} | ${c.pass ? 'ok' : 'FAIL'} | ${(c.error ?? c.detail ?? '').split('\n')[0]} |`);
}

const plan = JSON.parse(readFileSync(new URL('./plan.json', import.meta.url), 'utf8'))[mode];
const benchRows = plan.bench.map((row) => {
  const o = ours.find((r) => r.id === row.id) ?? null;
  const t = torchBench?.rows.find((r) => r.id === row.id) ?? null;
  const c = compileBench?.rows?.find((r) => r.id === row.id) ?? null;
  return { row, ours: o, torch: t, compiled: c };
});
if (benchRows.some((b) => b.ours || b.torch)) {
  lines.push('', '## Benchmark: resnet50, ours beside Python PyTorch eager', '');
  lines.push(
    'img/s = batch / median time of one call, after warm-up. Both sides time the whole call as a caller sees it: input copied host→device, forward (and backward + SGD step for training), result copied back to the host, synchronised. cuDNN benchmark mode on both sides; TF32 at each side\'s default (cuDNN convolutions may use TF32 in "float32" rows on both).',
  );
  if (cuda) {
    lines.push(
      'Memory: "smi" = peak of nvidia-smi memory.used during the row minus the reading before the process started CUDA (so: CUDA context + cuDNN/cuBLAS workspaces + the caching allocator\'s reserve). Ours runs each row in a fresh process; Python runs all rows in one process with empty_cache() between them. torch alloc/reserved = torch.cuda.max_memory_allocated / max_memory_reserved.',
    );
  } else {
    lines.push('Memory: peak RSS of the process (ours: one process per row; Python: all rows in one process, so its figure only grows). CPU numbers on this machine are not meaningful as a benchmark.');
  }
  lines.push('');
  if (cuda) {
    lines.push('| row | batch | precision | layout | ours img/s | torch img/s | ours / torch | torch.compile img/s | ours / compile | ours ms | torch ms | event loop p99 / max ms | ours smi MiB | torch smi MiB | torch alloc MiB | torch reserved MiB |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  } else {
    lines.push('| row | batch | precision | layout | ours img/s | torch img/s | ours / torch | torch.compile img/s | ours / compile | ours ms | torch ms | event loop p99 / max ms | ours peak RSS MiB | torch peak RSS MiB |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  }
  const tBase = torchBench?.env?.smiBaselineMiB;
  for (const { row, ours: o, torch: t, compiled: c } of benchRows) {
    const oi = o && !o.error ? o.imgPerSec : null;
    const ti = t && !t.error ? t.imgPerSec : null;
    const ci = c && !c.error ? c.imgPerSec : null;
    const ratio = oi && ti ? (oi / ti).toFixed(2) : '–';
    const cratio = oi && ci ? (oi / ci).toFixed(2) : '–';
    const loop = o?.eventLoopDelayMs ? `${o.eventLoopDelayMs.p99.toFixed(1)} / ${o.eventLoopDelayMs.max.toFixed(1)}` : '–';
    const label = `${row.id}${o?.error ? ' (ours: error)' : ''}${t?.error ? ' (torch: error)' : ''}${c?.error ? ' (compile: error)' : ''}`;
    const base = [label, row.batch, row.precision, row.memoryFormat, f1(oi), f1(ti), ratio, f1(ci), cratio, o && !o.error ? o.medianMs.toFixed(2) : '–', t && !t.error ? t.medianMs.toFixed(2) : '–', loop];
    if (cuda) {
      const os = o?.peakSmiMiB != null ? o.peakSmiMiB - (o.smiBaselineMiB ?? 0) : null;
      const ts = t?.peakSmiMiB != null ? t.peakSmiMiB - (tBase ?? 0) : null;
      base.push(f0(os), f0(ts), f0(t?.peakAllocatedMiB), f0(t?.peakReservedMiB));
    } else {
      base.push(f0(o?.peakRssMiB), f0(t?.peakRssMiB));
    }
    lines.push(`| ${base.join(' | ')} |`);
  }
  const errors = benchRows.flatMap(({ row, ours: o, torch: t, compiled: c }) => [
    ...(o?.error ? [`- ours ${row.id}: ${o.error.split('\n')[0]}`] : []),
    ...(t?.error ? [`- torch ${row.id}: ${t.error}`] : []),
    ...(c?.error ? [`- torch.compile ${row.id}: ${c.error}`] : []),
  ]);
  if (compileBench) {
    const done = compileBench.rows?.filter((r) => !r.error).map((r) => `${r.id} ${r.compileSeconds ?? '?'} s`) ?? [];
    lines.push('', `torch.compile (default mode): ${compileBench.error ?? `${done.length} of ${plan.compile?.length ?? 0} planned rows ran; first call (compilation included): ${done.join(', ') || 'none'}`}.`);
  }
  if (cuda) {
    const goals = [];
    const slower = benchRows.filter((b) => b.ours && b.torch && !b.ours.error && !b.torch.error && b.ours.imgPerSec < b.torch.imgPerSec);
    goals.push(`- at least 1.0x PyTorch eager on every row: ${slower.length ? `no (${slower.map((b) => `${b.row.id} ${(b.ours.imgPerSec / b.torch.imgPerSec).toFixed(2)}x`).join(', ')})` : 'yes'}`);
    for (const b of benchRows.filter((x) => x.row.kind === 'train' && x.ours && !x.ours.error)) {
      goals.push(`- AMP training ${b.row.id}: ${b.ours.imgPerSec.toFixed(0)} img/s (goal 2,500): ${b.ours.imgPerSec >= 2500 ? 'met' : 'not met'}`);
    }
    const worstLoop = Math.max(...benchRows.filter((b) => b.ours?.eventLoopDelayMs).map((b) => b.ours.eventLoopDelayMs.p99));
    if (Number.isFinite(worstLoop)) goals.push(`- event loop delay p99 under 20 ms during GPU work: worst row ${worstLoop.toFixed(1)} ms: ${worstLoop < 20 ? 'met' : 'not met'}`);
    lines.push('', 'Goals (issue 15):', ...goals);
  }
  if (errors.length) lines.push('', 'Errors:', ...errors);
  const train = benchRows.filter((b) => b.row.kind === 'train');
  for (const { row, ours: o, torch: t } of train) {
    lines.push('', `Training row ${row.id}: last loss ours ${o?.lastLoss?.toFixed?.(4) ?? '–'}, torch ${t?.lastLoss?.toFixed?.(4) ?? '–'} (random data and labels, different random weights: only finiteness is meaningful).`);
  }
}

const failedSteps = steps.filter((s) => s.status === 'FAIL');
const verdict = failedSteps.length === 0 ? 'PASS' : `FAIL (${failedSteps.map((s) => s.name).join(', ')})`;
lines.push('', `**Result: ${verdict}**`, '');
writeFileSync(join(dir, 'report.md'), lines.join('\n'));
writeFileSync(
  join(dir, 'results.json'),
  JSON.stringify({ mode, verdict, steps, env, build, fixtures, parity: { strict, tf32, train: trainParity }, api, bench: { torchEnv: torchBench?.env ?? null, compileEnv: compileBench?.env ?? null, rows: benchRows } }, null, 1),
);
console.log(lines.join('\n'));
