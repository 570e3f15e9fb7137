// Inference benchmark: our model.forward beside onnxruntime-node and Python PyTorch (eager and
// TorchScript-optimized) on the same machine, in the same run, with the same weights, the same
// input sizes and 2 intra-op threads for everyone.
//
//   node --import=tsx bench/inference.ts [--archs resnet18,resnet50] [--batches 1,8] [--size 224]
//        [--runs 8] [--rounds 3] [--warmup 3] [--threads 2] [--opset 17]
//        [--runtimes ours,ours-direct,ours-torchscript,onnxruntime,pytorch-eager,pytorch-optimized]
//        [--out inference]
//
// "ours" is model.forward with the default engine (oneDNN, Winograd where the CPU has it);
// "ours-direct" the oneDNN engine with direct convolutions only ({ winograd: false });
// "ours-torchscript" the TorchScript engine (LibTorch's freeze + optimize_for_inference);
// "ours-bfloat16" a model created with precision 'bfloat16' (the oneDNN engine in bfloat16, where
// the CPU has bfloat16 instructions), checked against ours with --bf16-tolerance (3e-2) instead.
//
// For each model: our weights (seed 0, BatchNorm statistics and affine parameters made
// non-trivial so that BN folding is actually exercised) are saved to a .pth, loaded by
// bench/export_onnx.py into torchvision's model and exported to ONNX (dynamic batch axis). Before
// anything is timed, every runtime's logits for the same input (batches 1 and 8) are compared with
// ours: max |theirs - ours| / max |ours| must stay under --tolerance (1e-3), or the run stops.
//
// Timing: `rounds` rounds; in each, every runtime (in an order rotated from round to round, so
// slow drift of the machine's load does not favour one) does `warmup` untimed then `runs` timed
// forwards per batch size. The medians pool all rounds. Along with each timing block the script
// records how many cores the runtime's process kept busy and how much CPU everything else on the
// machine used at the same time ("others"), from /proc/stat: the machine is shared. Each block
// waits for a quiet machine first and is run again when others used more than 0.15 cores during
// it (see `gated` in bench/util.ts; RESNET_BENCH_QUIET=0 turns that off).
//
// GFLOP/s: torchvision's per-image figures (resnet18 1.814, resnet50 4.089 at 224x224) are
// multiply-accumulates x 1e-9. The table counts 2 FLOPs per MAC (GFLOP/s = 2 x GMAC x images/s);
// the JSON has both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import {
  createModel, getNumThreads, libtorchVersion, setNumThreads, Tensor, type ArchitectureName, type InferenceEngineChoice,
  type InferenceEngineOptions, type ResNet,
} from '../lib/index.ts';
import { weightsEntry, weightsNames } from '../lib/weights/registry.ts';
import {
  environment, gated, markdownTable, quietCores, quietRetries, readFloat32, randn, relativeDifference, rng, runPython, summarize, timeRunsGated,
  uptimeLine, writeFloat32, writeResult, type Summary,
} from './util.ts';

const { values } = parseArgs({
  options: {
    archs: { type: 'string', default: 'resnet18,resnet50' },
    arch: { type: 'string' }, // older spelling of --archs with one name
    batches: { type: 'string', default: '1,8' },
    size: { type: 'string', default: '224' },
    runs: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    opset: { type: 'string', default: '17' },
    runtimes: { type: 'string', default: 'ours,ours-direct,ours-torchscript,ours-bfloat16,onnxruntime,pytorch-eager,pytorch-optimized' },
    'bf16-tolerance': { type: 'string', default: '3e-2' },
    tolerance: { type: 'string', default: '1e-3' },
    out: { type: 'string', default: 'inference' },
  },
});
const archs = (values.arch ?? values.archs).split(',') as ArchitectureName[];
const batches = values.batches.split(',').map(Number);
const size = Number(values.size);
const runs = Number(values.runs);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
const threads = Number(values.threads);
const opset = Number(values.opset);
const tolerance = Number(values.tolerance);
const runtimes = values.runtimes.split(',');
const known = ['ours', 'ours-direct', 'ours-torchscript', 'ours-bfloat16', 'onnxruntime', 'pytorch-eager', 'pytorch-optimized'];
const bf16Tolerance = Number(values['bf16-tolerance']);
/** Our runtimes: the inference engine each one sets before it runs. */
const ourEngines: Record<string, [InferenceEngineChoice, InferenceEngineOptions]> = {
  ours: ['auto', {}],
  'ours-direct': ['onednn', { winograd: false }],
  'ours-torchscript': ['torchscript', {}],
};
for (const r of runtimes) if (!known.includes(r)) throw new Error(`unknown runtime ${r}: use ${known.join(', ')}`);
if (!runtimes.includes('ours')) runtimes.unshift('ours'); // the reference for checks and ratios

/**
 * torchvision's GFLOPS at 224x224 (multiply-accumulates x 1e-9 per image), from the weights
 * registry; NaN for the CIFAR nets, which torchvision has no weights for.
 */
function gmacsAt224(arch: string): number {
  try {
    return weightsEntry(arch, weightsNames(arch)[0]!).gflops;
  } catch {
    return NaN;
  }
}
// Convolution cost scales with the pixel count; the fc head (~0.5% at 224) is ignored by this.
const gmacsPerImage = (arch: string) => gmacsAt224(arch) * (size / 224) ** 2;

setNumThreads(threads);
if (getNumThreads() !== threads) throw new Error(`setNumThreads(${threads}) left ${getNumThreads()} threads`);
const env = environment();
const loadBefore = uptimeLine();
console.error(`inference benchmark: ${archs.join(', ')}, batches ${batches.join(', ')}, ${size}x${size}, ${threads} threads, ${rounds} rounds x ${runs} runs (+${warmup} warm-up); ${loadBefore}`);

interface Sample {
  runtime: string; arch: string; batch: number; round: number; timesMs: number[]; coresBusy: number; othersCores: number | null;
  attempts: number; waitedMs: number; disturbed: boolean;
}
const samples: Sample[] = [];
const engineNames: string[] = []; // the default engine "ours" ran on
const checks: { arch: string; runtime: string; batch: number; maxAbsDiff: number; maxAbsRef: number; relative: number }[] = [];
const exports: unknown[] = [];

/** Non-trivial BatchNorm statistics and affine parameters, deterministic, so that folding BN matters. */
async function perturbBatchNorm(model: ResNet, seed: number): Promise<void> {
  const sd = await model.stateDict();
  const u = rng(seed);
  for (const key of Object.keys(sd)) {
    if (!key.endsWith('.running_var')) continue;
    const prefix = key.slice(0, -'running_var'.length);
    const set = (name: string, f: () => number) => {
      const t = sd[prefix + name]!;
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) data[i] = f();
    };
    set('running_mean', () => (u() - 0.5) * 0.2);
    set('running_var', () => 0.5 + u());
    set('weight', () => 0.5 + u() * 0.5);
    set('bias', () => (u() - 0.5) * 0.2);
  }
  await model.loadStateDict(sd);
}

const pyArgs = (arch: string, weights: string) => ['--arch', arch, '--weights', weights, '--size', String(size), '--threads', String(threads)];

for (const arch of archs) {
  const dir = mkdtempSync(join(tmpdir(), `resnet-inference-${arch}-`));
  try {
    const model = await createModel(arch, { seed: 0 });
    await perturbBatchNorm(model, 42);
    await model.eval();
    const pth = join(dir, `${arch}.pth`);
    await model.save(pth);

    // One input for every runtime's check: the largest batch; smaller batches are its first images.
    const maxBatch = Math.max(...batches);
    const per = 3 * size * size;
    const checkInput = randn(maxBatch * per, 1234);
    writeFloat32(join(dir, 'input.bin'), checkInput);
    const inputOf = (b: number) => new Tensor(checkInput.slice(0, b * per), [b, 3, size, size]);
    const oursOut = new Map<number, Float32Array>();
    for (const b of batches) oursOut.set(b, (await model.forward(inputOf(b))).data);
    const defaultEngine = `${await model.inferenceEngine()} engine`;
    if (!engineNames.includes(defaultEngine)) engineNames.push(defaultEngine);
    const check = (runtime: string, b: number, out: Float32Array) => {
      const d = relativeDifference(oursOut.get(b)!, out);
      checks.push({ arch, runtime, batch: b, ...d });
      const line = `${arch} batch ${b}: ${runtime} vs ours, max |diff| ${d.maxAbsDiff.toExponential(2)}, max |ours| ${d.maxAbsRef.toFixed(3)}, relative ${d.relative.toExponential(2)}`;
      const limit = runtime === 'ours-bfloat16' ? bf16Tolerance : tolerance;
      if (!(d.relative <= limit)) throw new Error(`${line}: above the tolerance ${limit}; not timing a different computation`);
      console.error(line);
    };

    for (const runtime of runtimes) {
      if (runtime === 'ours' || !(runtime in ourEngines)) continue;
      await model.setInferenceEngine(...ourEngines[runtime]!);
      for (const b of batches) check(runtime, b, (await model.forward(inputOf(b))).data);
    }

    let bf16Model: ResNet | null = null;
    if (runtimes.includes('ours-bfloat16')) {
      bf16Model = await createModel(arch, { seed: 0, precision: 'bfloat16' });
      await bf16Model.loadStateDict(await model.stateDict());
      for (const b of batches) check('ours-bfloat16', b, (await bf16Model.forward(inputOf(b))).data);
    }

    let session: ort.InferenceSession | null = null;
    if (runtimes.includes('onnxruntime')) {
      const onnx = join(dir, `${arch}.onnx`);
      exports.push(runPython('bench/export_onnx.py', ['--arch', arch, '--weights', pth, '--out', onnx, '--opset', String(opset), '--size', String(size)]));
      session = await ort.InferenceSession.create(onnx, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
      for (const b of batches) {
        const x = inputOf(b);
        const out = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
        check('onnxruntime', b, out.logits!.data as Float32Array);
      }
    }
    for (const mode of ['eager', 'optimized']) {
      if (!runtimes.includes(`pytorch-${mode}`)) continue;
      const outPath = join(dir, `torch-${mode}.bin`);
      runPython('bench/torch_forward.py', [...pyArgs(arch, pth), '--mode', mode, '--check-input', join(dir, 'input.bin'), '--check-batches', batches.join(','), '--check-output', outPath, '--check-only']);
      const all = readFloat32(outPath);
      let offset = 0;
      for (const b of batches) {
        const n = oursOut.get(b)!.length;
        check(`pytorch-${mode}`, b, all.subarray(offset, offset + n));
        offset += n;
      }
    }

    // Timing inputs: the same data for the in-process runtimes.
    const inputs = new Map(batches.map((b) => [b, new Tensor(randn(b * per, 7 + b), [b, 3, size, size])]));
    for (let round = 0; round < rounds; round++) {
      const order = runtimes.map((_, i) => runtimes[(i + round) % runtimes.length]!);
      for (const runtime of order) {
        if (runtime === 'ours-bfloat16') {
          for (const b of batches) {
            const x = inputs.get(b)!;
            const t = await timeRunsGated(() => bf16Model!.forward(x), runs, warmup);
            samples.push({ runtime, arch, batch: b, round, ...t });
          }
        } else if (runtime in ourEngines) {
          await model.setInferenceEngine(...ourEngines[runtime]!);
          for (const b of batches) {
            const x = inputs.get(b)!;
            const t = await timeRunsGated(() => model.forward(x), runs, warmup);
            samples.push({ runtime, arch, batch: b, round, ...t });
          }
        } else if (runtime === 'onnxruntime') {
          for (const b of batches) {
            const x = inputs.get(b)!;
            const feeds = { input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) };
            const t = await timeRunsGated(() => session!.run(feeds), runs, warmup);
            samples.push({ runtime, arch, batch: b, round, ...t });
          }
        } else {
          const mode = runtime.slice('pytorch-'.length);
          // One Python process per round does all batches; it is run again as a whole when disturbed.
          const py = await gated(
            async () => runPython<{ results: { batch: number; times_ms: number[]; cpu_cores_busy: number; others_cores: number | null }[] }>(
              'bench/torch_forward.py',
              [...pyArgs(arch, pth), '--mode', mode, '--batches', batches.join(','), '--runs', String(runs), '--warmup', String(warmup)],
            ),
            (r) => Math.max(...r.results.map((x) => x.others_cores ?? 0)),
          );
          for (const r of py.results) {
            samples.push({
              runtime, arch, batch: r.batch, round, timesMs: r.times_ms, coresBusy: r.cpu_cores_busy, othersCores: r.others_cores,
              attempts: py.attempts, waitedMs: py.waitedMs, disturbed: py.disturbed,
            });
          }
        }
        console.error(`  ${arch} round ${round + 1}/${rounds} ${runtime}: ` + batches.map((b) => {
          const s = samples.filter((x) => x.runtime === runtime && x.arch === arch && x.batch === b && x.round === round).at(-1)!;
          return `b${b} ${summarize(s.timesMs).median.toFixed(1)} ms (others ${s.othersCores?.toFixed(2) ?? '?'} cores)`;
        }).join(', '));
      }
    }
    await session?.release();
    bf16Model?.dispose();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Row {
  runtime: string; arch: string; batch: number; ms: Summary; imagesPerSecond: number; throughputVsOurs: number;
  gmacPerSecond: number; gflopPerSecond: number; coresBusy: number; othersCores: number | null; roundMedians: number[]; disturbedBlocks: number;
}
const rows: Row[] = [];
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const arch of archs) {
  for (const batch of batches) {
    for (const runtime of runtimes) {
      const ss = samples.filter((s) => s.runtime === runtime && s.arch === arch && s.batch === batch);
      if (ss.length === 0) continue;
      const ms = summarize(ss.flatMap((s) => s.timesMs));
      const imagesPerSecond = (batch * 1000) / ms.median;
      const others = ss.map((s) => s.othersCores).filter((x): x is number => x !== null);
      rows.push({
        runtime, arch, batch, ms, imagesPerSecond, throughputVsOurs: NaN,
        gmacPerSecond: imagesPerSecond * gmacsPerImage(arch), gflopPerSecond: 2 * imagesPerSecond * gmacsPerImage(arch),
        coresBusy: avg(ss.map((s) => s.coresBusy)), othersCores: others.length ? avg(others) : null,
        roundMedians: ss.map((s) => summarize(s.timesMs).median), disturbedBlocks: ss.filter((s) => s.disturbed).length,
      });
    }
    const ours = rows.find((r) => r.runtime === 'ours' && r.arch === arch && r.batch === batch)!;
    for (const r of rows) if (r.arch === arch && r.batch === batch) r.throughputVsOurs = ours.ms.median / r.ms.median;
  }
}

const loadAfter = uptimeLine();
const names: Record<string, string> = {
  ours: `libtorch-resnet (${engineNames.join(', ')})`, 'ours-direct': 'libtorch-resnet, oneDNN direct convolutions only',
  'ours-torchscript': 'libtorch-resnet, TorchScript engine', 'ours-bfloat16': 'libtorch-resnet, precision bfloat16', onnxruntime: `onnxruntime-node ${ort.env.versions.node ?? ''}`.trim(),
  'pytorch-eager': 'PyTorch eager', 'pytorch-optimized': 'PyTorch optimize_for_inference',
};
console.log(`\nForward, ${size}x${size}, ${threads} intra-op threads each; LibTorch ${libtorchVersion()}; ${env.cpu}, ${env.cores} cores; ` +
  `median of ${rounds} rounds x ${runs} runs after ${warmup} warm-up each; ${env.date}`);
console.log(`load before: ${loadBefore}\nload after:  ${loadAfter}\n`);
console.log(markdownTable(
  ['runtime', 'model', 'batch', 'median ms', 'q1–q3 ms', 'images/s', 'throughput vs ours', 'GFLOP/s (2×MAC)', 'cores busy', 'others (cores)'],
  rows.map((r) => [
    names[r.runtime] ?? r.runtime, r.arch, r.batch, r.ms.median.toFixed(1), `${r.ms.q1.toFixed(1)}–${r.ms.q3.toFixed(1)}`,
    r.imagesPerSecond.toFixed(2), `${r.throughputVsOurs.toFixed(2)}×`, r.gflopPerSecond.toFixed(1), r.coresBusy.toFixed(2),
    (r.othersCores === null ? '?' : r.othersCores.toFixed(2)) + (r.disturbedBlocks ? ` (${r.disturbedBlocks} disturbed)` : ''),
  ]),
));
const retried = samples.filter((s) => s.attempts > 1).length;
const disturbed = samples.filter((s) => s.disturbed).length;
console.log(`\n${samples.length} timing blocks; quiet gate ${quietCores > 0 ? `${quietCores} cores` : 'off'}: ${retried} run again because others used the CPU, ` +
  `${disturbed} still disturbed after ${quietRetries} retries (kept), ${(samples.reduce((a, s) => a + s.waitedMs, 0) / 1000).toFixed(0)} s spent waiting for quiet.`);
console.log('\nOutputs vs ours before timing (max |theirs − ours| / max |ours|, tolerance ' + tolerance + ', bfloat16 ' + bf16Tolerance + '):');
console.log(markdownTable(['model', 'batch', ...runtimes.filter((r) => r !== 'ours').map((r) => names[r] ?? r)],
  archs.flatMap((arch) => batches.map((b) => [arch, b, ...runtimes.filter((r) => r !== 'ours').map((r) => {
    const c = checks.find((x) => x.arch === arch && x.batch === b && x.runtime === r);
    return c ? c.relative.toExponential(1) : '–';
  })]))));

writeResult(values.out, {
  environment: env,
  loadBefore, loadAfter,
  settings: { archs, batches, size, runs, rounds, warmup, threads, opset, tolerance, bf16Tolerance, runtimes, quietCores },
  versions: { libtorch: libtorchVersion(), onnxruntime: ort.env.versions },
  onnxruntimeSessionOptions: { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' },
  flops: 'gflopPerSecond = 2 x gmacPerSecond; GMAC per image from torchvision at 224x224, scaled by (size/224)^2',
  gmacsPerImage: Object.fromEntries(archs.map((a) => [a, gmacsPerImage(a)])),
  defaultEngine: engineNames, checks, exports, rows, samples,
});
