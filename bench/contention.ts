// Throughput when another process takes a core: training steps (resnet20, batch 128 of 1x28x28)
// and forwards (resnet18, batch 8 of 3x224x224), each measured quiet and beside one busy process
// (a JavaScript loop), under OpenMP's default wait policy, OMP_WAIT_POLICY=PASSIVE, and one thread
// (OMP_NUM_THREADS=1). Every measurement is its own child process: libgomp reads its environment
// when LibTorch loads.
//   node --import=tsx bench/contention.ts [--seconds 12]
// Prints a table and writes bench/results/contention.json.
import { spawn, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { writeResult } from './util.ts';

const { values } = parseArgs({ options: { role: { type: 'string', default: 'bench' }, workload: { type: 'string' }, seconds: { type: 'string', default: '12' } } });
const seconds = Number(values.seconds);

if (values.role === 'child') {
  const { createResNet, resnet18, Tensor } = await import('../lib/index.ts');
  const workload = values.workload;
  let images = 0;
  let run: () => Promise<void>;
  if (workload === 'train') {
    const model = await createResNet({ block: 'basic', stem: 'cifar', layers: [3, 3, 3], widths: [16, 32, 64], shortcut: 'A', numClasses: 10, inChannels: 1, seed: 0 });
    const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
    const x = new Tensor(new Float32Array(128 * 28 * 28).map((_, i) => Math.sin(i)), [128, 1, 28, 28]);
    const y = new BigInt64Array(128).map((_, i) => BigInt(i % 10));
    run = async () => {
      await trainer.step(x, y);
      images += 128;
    };
  } else {
    const model = await resnet18({ numClasses: 1000, seed: 0 });
    const x = new Tensor(new Float32Array(8 * 3 * 224 * 224).map((_, i) => Math.sin(i)), [8, 3, 224, 224]);
    run = async () => {
      await model.forward(x);
      images += 8;
    };
  }
  for (let i = 0; i < 3; i++) await run(); // warm-up
  images = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) await run();
  console.log(JSON.stringify({ imagesPerSecond: images / ((performance.now() - t0) / 1000) }));
  process.exit(0);
}

const policies: Record<string, NodeJS.ProcessEnv> = {
  'default (2 threads, GOMP_SPINCOUNT=1000)': {},
  "libgomp's own default (GOMP_SPINCOUNT=300000)": { GOMP_SPINCOUNT: '300000' },
  'OMP_WAIT_POLICY=PASSIVE (2 threads)': { OMP_WAIT_POLICY: 'PASSIVE' },
  'OMP_NUM_THREADS=1': { OMP_NUM_THREADS: '1' },
};

function measure(workload: string, env: NodeJS.ProcessEnv): number {
  const r = spawnSync(process.execPath, ['--import=tsx', 'bench/contention.ts', '--role', 'child', '--workload', workload, '--seconds', String(seconds)], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { imagesPerSecond: number }).imagesPerSecond;
}

const rows: Array<{ workload: string; policy: string; quiet: number; busy: number; ratio: number }> = [];
for (const workload of ['train', 'forward']) {
  for (const [policy, env] of Object.entries(policies)) {
    const quiet = measure(workload, env);
    const hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    let busy: number;
    try {
      busy = measure(workload, env);
    } finally {
      hog.kill('SIGKILL');
    }
    rows.push({ workload, policy, quiet, busy, ratio: busy / quiet });
    console.log(`${workload.padEnd(8)} ${policy.padEnd(38)} quiet ${quiet.toFixed(0).padStart(5)} img/s   beside a busy process ${busy.toFixed(0).padStart(5)} img/s   ${(100 * busy / quiet).toFixed(0)}%`);
  }
}
writeResult('contention', { seconds, rows });
