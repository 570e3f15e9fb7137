// The whole benchmark suite in one command (npm run bench): inference, training, data-parallel
// training (2 ranks over Gloo), weight loading, memory, and with --profile the per-stage profile.
// Each benchmark runs in a fresh Node process (memory figures must not inherit another
// benchmark's heap), one after another, never in parallel. Their tables are printed as they come
// and collected, with the load average before and after each, in bench/results/summary.md; each
// also writes its own bench/results/<name>.json.
//
//   node --import=tsx bench/all.ts [--only inference,memory] [--profile] [--quick]
//
// --quick: few repetitions everywhere (a smoke test of the suite, not numbers to publish).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { environment, uptimeLine } from './util.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});

const quick = values.quick;
const suite: { name: string; script: string; args: string[] }[] = [
  { name: 'inference', script: 'bench/inference.ts', args: quick ? ['--runs', '2', '--rounds', '1', '--warmup', '1'] : [] },
  { name: 'train', script: 'bench/train.ts', args: quick ? ['--runs', '2', '--warmup', '1'] : [] },
  { name: 'distributed', script: 'bench/distributed.ts', args: quick ? ['--windows', '2', '--steps', '2', '--warmup', '1', '--allreduce', '10', '--batches', '2'] : [] },
  { name: 'weights-load', script: 'bench/weights-load.ts', args: [] },
  { name: 'memory', script: 'bench/memory.ts', args: quick ? ['--forwards', '200', '--steps', '60', '--skip-python'] : [] },
  { name: 'profile', script: 'bench/profile.ts', args: quick ? ['--runs', '3', '--batches', '1'] : [] },
];
const wanted = values.only?.split(',') ?? suite.filter((s) => s.name !== 'profile' || values.profile).map((s) => s.name);
for (const w of wanted) if (!suite.some((s) => s.name === w)) throw new Error(`unknown benchmark ${w}: ${suite.map((s) => s.name).join(', ')}`);

const env = environment();
const sections: string[] = [
  `# Benchmark run ${env.date}`,
  '',
  `Command: \`${['node --import=tsx bench/all.ts', ...process.argv.slice(2)].join(' ')}\``,
  `Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB; Node ${env.node}; git ${env.gitHead}${env.nativeChanges ? ' (native sources changed since)' : ''}; addon built ${env.addonBuilt}`,
  '',
];
let failed = false;
const started = performance.now();
for (const b of suite.filter((s) => wanted.includes(s.name))) {
  const before = uptimeLine();
  console.log(`\n## ${b.name} (${[b.script, ...b.args].join(' ')})\n${before}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import=tsx', b.script, ...b.args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
  // The profile's children print oneDNN's verbose lines to their own pipes, never here.
  process.stdout.write(r.stdout ?? '');
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  const after = uptimeLine();
  console.log(`${after}; ${b.name} took ${seconds} s${r.status === 0 ? '' : `; FAILED (exit ${r.status ?? r.signal})`}`);
  if (r.status !== 0) failed = true;
  sections.push(`## ${b.name}`, '', `\`node --import=tsx ${[b.script, ...b.args].join(' ')}\`, ${seconds} s${r.status === 0 ? '' : `, FAILED (exit ${r.status ?? r.signal})`}`, '',
    `- before: ${before}`, `- after: ${after}`, '', (r.stdout ?? '').trim(), '');
}
if (wanted.includes('inference') && existsSync('bench/results/inference.json')) {
  // The inference table as a bar chart, bench/results/inference.svg.
  const plot = spawnSync(process.execPath, ['--import=tsx', 'bench/plot.ts'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (plot.status !== 0) failed = true;
}
sections.push(`All: ${((performance.now() - started) / 1000).toFixed(0)} s.`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/summary.md', sections.join('\n') + '\n');
console.log(`\nwrote bench/results/summary.md${failed ? '; some benchmarks FAILED' : ''}`);
if (failed) process.exitCode = 1;
