// `resnet plot` (training curves from run folders) and `resnet experiment degradation` (the paper's
// plain-vs-residual comparison, resumable net by net).
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { cudaAvailable } from '../lib/runtime.js';
import { loadRun, plotCurves } from '../lib/train/curves.js';
import { runDegradation } from '../lib/train/degradation.js';
import { loadData, UsageError } from './train-commands.js';

export const curvesUsage = `  plot <run-dir|metrics.jsonl>... -o, --out FILE.svg [--title T] [--max-error PERCENT]
        error against iterations: training dashed, test bold, one colour per run
  experiment degradation --dataset D [--root DIR] --out-dir DIR [--depths 20,56] [--nets plain20,...]
        [--epochs 5] [--seed 0] [--batch-size 128] [--device cpu|cuda]
        plain nets vs ResNets (paper, section 4.2); reruns resume; writes results.md, degradation.svg`;

export const plotOptions = { out: { type: 'string', short: 'o' }, title: { type: 'string' }, 'max-error': { type: 'string' } } as const;

export const experimentOptions = {
  dataset: { type: 'string' },
  root: { type: 'string' },
  'out-dir': { type: 'string' },
  depths: { type: 'string', default: '20,56' },
  nets: { type: 'string' },
  epochs: { type: 'string', default: '5' },
  seed: { type: 'string', default: '0' },
  'batch-size': { type: 'string', default: '128' },
  device: { type: 'string' },
} as const;

export async function plot(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: plotOptions,
  });
  if (positionals.length === 0) throw new UsageError('plot needs at least one run folder (or metrics.jsonl file)');
  if (!values.out) throw new UsageError('plot needs -o FILE.svg');
  const maxError = values['max-error'] === undefined ? undefined : Number(values['max-error']);
  if (maxError !== undefined && !(maxError > 0)) throw new UsageError(`--max-error expects a positive percentage, got '${values['max-error']}'`);
  const runs = await Promise.all(positionals.map(loadRun));
  // Two runs of one architecture would share a legend entry; name them by their paths instead.
  const labels = runs.map((r) => r.label);
  runs.forEach((r, i) => {
    if (labels.filter((l) => l === r.label).length > 1) r.label = positionals[i]!;
  });
  const svg = await plotCurves(runs, { ...(values.title !== undefined && { title: values.title }), ...(maxError !== undefined && { maxErrorPercent: maxError }) });
  await writeFileAtomic(values.out, svg);
  console.log(json ? JSON.stringify({ out: values.out, runs: runs.map((r) => r.label) }) : `${values.out}: ${runs.length} run(s)`);
}

export async function experiment(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: experimentOptions,
  });
  if (positionals[0] !== 'degradation' || positionals.length > 1) throw new UsageError(`expected 'experiment degradation', got 'experiment ${positionals.join(' ')}'`);
  if (!values.dataset || !values['out-dir']) throw new UsageError('experiment degradation needs --dataset and --out-dir');
  const numbers = (flag: string, text: string) =>
    text.split(',').map((s) => {
      if (!/^\d+$/.test(s.trim())) throw new UsageError(`--${flag} expects comma-separated integers, got '${text}'`);
      return Number(s);
    });
  const [train, test] = await Promise.all([loadData(values.dataset, 'train', values.root, 224), loadData(values.dataset, 'test', values.root, 224)]);
  const report = await runDegradation({
    train,
    test,
    outDir: values['out-dir'],
    depths: numbers('depths', values.depths),
    ...(values.nets !== undefined && { nets: values.nets.split(',').map((s) => s.trim()) }),
    epochs: numbers('epochs', values.epochs)[0]!,
    seed: numbers('seed', values.seed)[0]!,
    batchSize: numbers('batch-size', values['batch-size'])[0]!,
    // The same command on a GPU machine trains there.
    device: values.device ?? (cudaAvailable() ? 'cuda' : 'cpu'),
    onLog: (m) => process.stderr.write(`${json ? '' : '\n'}${m}\n`),
    ...(!json && {
      onProgress: (net, p) => process.stderr.write(`\r${net} epoch ${p.epoch + 1}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(3)} lr ${p.lr.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s`),
    }),
  });
  const pending = report.pending.length ? ` (not trained yet: ${report.pending.join(', ')})` : '';
  console.log(json ? JSON.stringify(report) : `${report.results.length} net(s) done${pending}: ${report.table}, ${report.figure}`);
}
