// Where the time goes: our forward beside onnxruntime-node's, stage by stage and kernel by kernel.
//
//   node --import=tsx bench/profile.ts [--arch resnet50] [--batches 1,8] [--runs 10] [--threads 2] [--no-perf]
//
// Each runtime runs in a child process of its own (so that thread counts, CPU time and perf
// samples belong to one runtime):
// - ours with ONEDNN_VERBOSE=1: oneDNN prints every primitive it executes with its time, which
//   gives the convolutions, the fused ReLU/add, pooling and layout reorders per layer; the time
//   outside oneDNN (ATen operators, TorchScript interpreter, copies) is the wall time of a run
//   of a verbose run minus that sum;
// - onnxruntime-node with its own profiler (enableProfiling): every node's kernel time.
// Layers are grouped into stages (stem, layer1..4, head) by their output's spatial size for ours
// and by their ONNX node names for onnxruntime. Times are medians over the timed runs, in ms per
// forward. Each child waits for a quiet machine and is run again when other work used the CPU
// during its timed runs (the quiet gate of bench/util.ts). With `perf` on the PATH and allowed, each child is also sampled (perf record -p,
// attached after warm-up) and the samples are split by shared object: oneDNN's JIT kernels show as
// anonymous code ("[JIT]"), MLAS is inside libonnxruntime, OpenMP's spin-waiting is libgomp.
// Writes bench/results/profile.json.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { environment, gated, markdownTable, median, randn, runPython, systemBusyMs, uptimeLine, writeResult } from './util.ts';

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'resnet50' },
    batches: { type: 'string', default: '1,8' },
    size: { type: 'string', default: '224' },
    runs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    'no-perf': { type: 'boolean', default: false },
    // Internal: the child processes.
    child: { type: 'string' },
    batch: { type: 'string' },
    onnx: { type: 'string' },
    'ort-profile': { type: 'string' },
    wait: { type: 'boolean', default: false },
    out: { type: 'string', default: 'profile' },
  },
});
const size = Number(values.size);
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const threads = Number(values.threads);

const threadCount = () => readdirSync('/proc/self/task').length;

/** A child: sets up one runtime, warms up, optionally waits for "go" on stdin, times `runs` forwards. */
async function child(kind: string): Promise<void> {
  const batch = Number(values.batch);
  const threadsAtStart = threadCount();
  const x = randn(batch * 3 * size * size, 7);
  let run: () => Promise<unknown>;
  let finish = async () => {};
  if (kind === 'ours') {
    const { createModel, setNumThreads, Tensor } = await import('../lib/index.ts');
    setNumThreads(threads);
    const model = await createModel(values.arch as 'resnet50', { seed: 0 });
    await model.eval();
    const t = new Tensor(x, [batch, 3, size, size]);
    run = () => model.forward(t);
    finish = async () => model.dispose();
  } else {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(values.onnx!, {
      intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
      ...(values['ort-profile'] ? { enableProfiling: true, profileFilePrefix: values['ort-profile'] } : {}),
    });
    const feeds = { input: new ort.Tensor('float32', x, [batch, 3, size, size]) };
    run = () => session.run(feeds);
    finish = async () => {
      if (values['ort-profile']) session.endProfiling();
      await session.release();
    };
  }
  for (let i = 0; i < warmup; i++) await run();
  if (values.wait) {
    console.log('READY');
    const rl = createInterface({ input: process.stdin });
    await new Promise<void>((resolve) => rl.once('line', () => resolve()));
    rl.close();
  }
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const sys0 = systemBusyMs();
  const wall0 = performance.now();
  for (let i = 0; i < runs; i++) {
    console.log(`@@RUN ${i}`); // delimits oneDNN's verbose lines (also on stdout, flushed per line)
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  console.log('@@END');
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - wall0;
  const sys1 = systemBusyMs();
  const ownMs = (cpu.user + cpu.system) / 1000;
  const coresBusy = ownMs / wall;
  // perf, attached to this process, counts among the others; its share is small at 999 Hz.
  const othersCores = sys0 === null || sys1 === null ? null : Math.max(0, (sys1 - sys0 - ownMs) / wall);
  const threadsAfter = threadCount();
  await finish();
  console.log(JSON.stringify({ kind, batch, medianMs: median(times), times, coresBusy, othersCores, threadsAtStart, threadsAfter }));
}

interface ChildResult { kind: string; batch: number; medianMs: number; coresBusy: number; othersCores: number | null; threadsAtStart: number; threadsAfter: number; stdout: string; perf: { dso: string; percent: number }[] | null }

/** runChild behind the quiet gate of bench/util.ts: run again when others used the CPU meanwhile. */
const runChildGated = (args: string[], env: NodeJS.ProcessEnv, perfFile: string | null) =>
  gated(() => runChild(args, env, perfFile), (r) => r.othersCores);

/** Runs a child to completion; with `perfFile`, attaches perf to it after its warm-up. */
function runChild(args: string[], env: NodeJS.ProcessEnv, perfFile: string | null): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import=tsx', 'bench/profile.ts', ...args, ...(perfFile ? ['--wait'] : [])], {
      env, stdio: ['pipe', 'pipe', 'inherit'],
    });
    let stdout = '';
    let perf: ReturnType<typeof spawn> | null = null;
    let perfDone: Promise<void> = Promise.resolve();
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (perfFile && perf === null && stdout.includes('READY\n')) {
        perf = spawn('perf', ['record', '-F', '999', '-o', perfFile, '-p', String(proc.pid)], { stdio: 'ignore' });
        perfDone = new Promise((r) => perf!.once('exit', () => r()));
        setTimeout(() => proc.stdin.write('go\n'), 700); // perf needs a moment to attach
      }
    });
    proc.once('error', reject);
    proc.once('exit', async (code) => {
      if (code !== 0) return reject(new Error(`profile child ${args.join(' ')} exited with ${code}`));
      if (perf) {
        (perf as ReturnType<typeof spawn>).kill('SIGINT');
        await perfDone;
      }
      const last = stdout.trim().split('\n').at(-1)!;
      resolve({ ...(JSON.parse(last) as Omit<ChildResult, 'stdout' | 'perf'>), stdout, perf: perfFile ? perfByDso(perfFile) : null });
    });
  });
}

function perfAvailable(): boolean {
  try {
    runQuiet('perf', ['--version']);
    return true;
  } catch {
    return false;
  }
}

function runQuiet(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
}

/** perf report's split of samples by shared object. */
function perfByDso(file: string): { dso: string; percent: number }[] | null {
  try {
    const out = runQuiet('perf', ['report', '-i', file, '--no-children', '--sort', 'dso', '--stdio', '-g', 'none']);
    const rows = out.split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).map((l) => {
      const m = /^\s+([\d.]+)%\s+(.*)$/.exec(l)!;
      return { dso: m[2]!.trim().replace(/^\[JIT\] tid \d+$/, '[JIT] (oneDNN kernels)'), percent: Number(m[1]) };
    });
    return rows.slice(0, 8);
  } catch {
    return null;
  }
}

/** Stage of a oneDNN primitive from the spatial size of its output (or its tensor). */
function stageOfSpatial(spatial: number, isPooling: boolean): string {
  if (isPooling && spatial === size / 4) return 'stem';
  if (spatial === size) return 'input';
  const stages: [number, string][] = [[size / 2, 'stem'], [size / 4, 'layer1'], [size / 8, 'layer2'], [size / 16, 'layer3'], [size / 32, 'layer4']];
  for (const [s, name] of stages) if (Math.abs(spatial - s) < 1) return name;
  return spatial <= 1 ? 'head' : `other (${spatial})`;
}

interface Entry { stage: string; kind: string; ms: number }

/** oneDNN verbose lines of the timed runs, grouped per run. */
function parseOneDnn(stdout: string): Entry[][] {
  const perRun: Entry[][] = [];
  let current: Entry[] | null = null;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@@RUN')) {
      current = [];
      perRun.push(current);
      continue;
    }
    if (line.startsWith('@@END')) {
      current = null;
      continue;
    }
    if (current === null || !line.startsWith('onednn_verbose,exec,') && !line.startsWith('dnnl_verbose,exec,')) continue;
    const f = line.split(',');
    const primitive = f[3]!;
    const impl = f[4]!;
    const mds = f[6]!;
    const problem = f[f.length - 2]!;
    const ms = Number(f[f.length - 1]);
    let stage: string;
    let kind: string = primitive;
    if (primitive === 'convolution' || primitive === 'pooling_v2' || primitive === 'pooling') {
      const oh = /oh(\d+)/.exec(problem);
      stage = stageOfSpatial(oh ? Number(oh[1]) : NaN, primitive !== 'convolution');
      if (primitive === 'convolution') {
        kind = `convolution ${impl.split(':')[0]}`; // jit (direct) or jit_1x1, ...
        const post = /attr-post-ops:([^ ,]+)/.exec(f[7] ?? '');
        if (post) kind += ` + ${post[1]!.replace(/\+/g, ' ')}`;
      } else kind = 'pooling';
    } else if (primitive === 'reorder') {
      // Weights are OC-blocked (capital first letter in the tag, e.g. Acdb16a, ABcd16b16a).
      const weights = /:blocked:[A-Z]/.test(mds);
      const dims = problem.split('x').map(Number);
      stage = weights ? 'weights' : stageOfSpatial(dims[dims.length - 1] ?? NaN, false);
      kind = weights ? 'reorder (weights)' : 'reorder (activations)';
    } else if (primitive === 'inner_product') {
      stage = 'head'; // the fc layer (its problem reads mb…ic…oc…, no spatial size)
    } else {
      const dims = problem.split('x').map(Number);
      stage = stageOfSpatial(dims[dims.length - 1] ?? NaN, false);
    }
    current.push({ stage, kind, ms });
  }
  return perRun;
}

/** onnxruntime's profile (Chrome trace JSON): node kernel times of the timed runs, grouped per run. */
function parseOrtProfile(file: string): { perRun: Entry[][]; runMs: number[] } {
  type Ev = { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } };
  const events = JSON.parse(readFileSync(file, 'utf8')) as Ev[];
  const runsEv = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts).slice(-runs);
  const perRun = runsEv.map((r) => events
    .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= r.ts && e.ts <= r.ts + r.dur)
    .map((e) => {
      const name = e.name.slice(0, -'_kernel_time'.length);
      const layer = /(layer[1-4])/.exec(name);
      const stage = layer ? layer[1]! : /fc|Gemm|avgpool|Flatten|GlobalAveragePool/i.test(name + (e.args?.op_name ?? '')) ? 'head' : 'stem';
      return { stage, kind: e.args?.op_name ?? name, ms: e.dur / 1000 };
    }));
  return { perRun, runMs: runsEv.map((r) => r.dur / 1000) };
}

/** Median over runs of the per-run sum of the entries `key` selects. */
function medianBy(perRun: Entry[][], key: (e: Entry) => string): Map<string, number> {
  const keys = new Set(perRun.flatMap((r) => r.map(key)));
  const out = new Map<string, number>();
  for (const k of keys) out.set(k, median(perRun.map((r) => r.filter((e) => key(e) === k).reduce((a, e) => a + e.ms, 0))));
  return out;
}

async function main(): Promise<void> {
  const env = environment();
  const loadBefore = uptimeLine();
  const batches = values.batches.split(',').map(Number);
  const usePerf = !values['no-perf'] && perfAvailable();
  const dir = mkdtempSync(join(tmpdir(), 'resnet-profile-'));
  const report: Record<string, unknown>[] = [];
  try {
    // The ONNX file: our seed-0 weights, exported as bench/inference.ts does.
    const { createModel } = await import('../lib/index.ts');
    const model = await createModel(values.arch as 'resnet50', { seed: 0 });
    await model.save(join(dir, 'w.pth'));
    model.dispose();
    const onnx = join(dir, 'w.onnx');
    runPython('bench/export_onnx.py', ['--arch', values.arch, '--weights', join(dir, 'w.pth'), '--out', onnx, '--size', String(size)]);

    const common = ['--arch', values.arch, '--size', String(size), '--runs', String(runs), '--warmup', String(warmup), '--threads', String(threads)];
    for (const batch of batches) {
      const b = ['--batch', String(batch)];
      const oursPlain = await runChildGated(['--child', 'ours', ...common, ...b], process.env, usePerf ? join(dir, `ours-${batch}.perf`) : null);
      const oursVerbose = await runChildGated(['--child', 'ours', ...common, ...b], { ...process.env, ONEDNN_VERBOSE: '1', DNNL_VERBOSE: '1' }, null);
      const ortPlain = await runChildGated(['--child', 'ort', ...common, ...b, '--onnx', onnx], process.env, usePerf ? join(dir, `ort-${batch}.perf`) : null);
      // Each attempt writes its own profile file; the last one is the attempt that was kept.
      let attempt = 0;
      await gated(() => runChild(['--child', 'ort', ...common, ...b, '--onnx', onnx, '--ort-profile', join(dir, `ort-profile-${batch}-${++attempt}-`)], process.env, null), (r) => r.othersCores);
      const profileFile = readdirSync(dir).filter((f) => f.startsWith(`ort-profile-${batch}-${attempt}-`)).map((f) => join(dir, f))[0];
      if (!profileFile) throw new Error('onnxruntime wrote no profile');

      const ours = parseOneDnn(oursVerbose.stdout);
      const ort = parseOrtProfile(profileFile);
      const oursStages = medianBy(ours, (e) => e.stage);
      const ortStages = medianBy(ort.perRun, (e) => e.stage);
      const oursKinds = medianBy(ours, (e) => e.kind);
      const ortKinds = medianBy(ort.perRun, (e) => e.kind);
      const oursInside = median(ours.map((r) => r.reduce((a, e) => a + e.ms, 0)));
      const ortInside = median(ort.perRun.map((r) => r.reduce((a, e) => a + e.ms, 0)));
      const stages = ['input', 'stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head', ...new Set([...oursStages.keys(), ...ortStages.keys()])]
        .filter((s, i, all) => all.indexOf(s) === i && (oursStages.has(s) || ortStages.has(s)));
      const f = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(2));

      console.log(`\n${values.arch}, batch ${batch}, ${size}×${size}, ${threads} threads: ms per forward (median of ${runs} runs)`);
      console.log(markdownTable(['stage', 'ours (oneDNN primitives)', 'onnxruntime (kernels)', 'ours ÷ onnxruntime'],
        [
          ...stages.map((s) => [s, f(oursStages.get(s)), f(ortStages.get(s)), oursStages.has(s) && ortStages.has(s) ? (oursStages.get(s)! / ortStages.get(s)!).toFixed(2) : '–']),
          ['sum of the above', f(oursInside), f(ortInside), (oursInside / ortInside).toFixed(2)],
          ['rest of a profiled run (framework, other ops, copies; ours: and verbose printing)', f(oursVerbose.medianMs - oursInside), f(median(ort.runMs) - ortInside), '–'],
          [`wall time of a run, no profiler${usePerf ? ' (perf sampling attached)' : ''}`, f(oursPlain.medianMs), f(ortPlain.medianMs), (oursPlain.medianMs / ortPlain.medianMs).toFixed(2)],
          ['cores busy during the runs', oursPlain.coresBusy.toFixed(2), ortPlain.coresBusy.toFixed(2), '–'],
          ['threads the runtime added to the process', oursPlain.threadsAfter - oursPlain.threadsAtStart, ortPlain.threadsAfter - ortPlain.threadsAtStart, '–'],
        ]));
      console.log('\nby kind (ms per forward):');
      console.log(markdownTable(['ours: oneDNN primitive', 'ms'], [...oursKinds].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v.toFixed(2)])));
      console.log(markdownTable(['onnxruntime: op', 'ms'], [...ortKinds].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v.toFixed(2)])));
      if (oursPlain.perf && ortPlain.perf) {
        console.log('\nperf samples by shared object (timed runs only):');
        console.log(markdownTable(['ours', '%'], oursPlain.perf.map((r) => [r.dso, r.percent.toFixed(1)])));
        console.log(markdownTable(['onnxruntime', '%'], ortPlain.perf.map((r) => [r.dso, r.percent.toFixed(1)])));
      }
      report.push({
        batch,
        ours: { wallMs: oursPlain.medianMs, profiledWallMs: oursVerbose.medianMs, coresBusy: oursPlain.coresBusy, threadsAdded: oursPlain.threadsAfter - oursPlain.threadsAtStart, oneDnnMs: oursInside, stages: Object.fromEntries(oursStages), kinds: Object.fromEntries(oursKinds), perf: oursPlain.perf },
        onnxruntime: { wallMs: ortPlain.medianMs, profiledWallMs: median(ort.runMs), coresBusy: ortPlain.coresBusy, threadsAdded: ortPlain.threadsAfter - ortPlain.threadsAtStart, kernelsMs: ortInside, stages: Object.fromEntries(ortStages), kinds: Object.fromEntries(ortKinds), perf: ortPlain.perf },
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = uptimeLine();
  console.log(`\nload before: ${loadBefore}\nload after:  ${loadAfter}`);
  writeResult(values.out, { environment: env, loadBefore, loadAfter, arch: values.arch, size, runs, threads, perf: usePerf, results: report });
}

if (values.child) await child(values.child);
else await main();
