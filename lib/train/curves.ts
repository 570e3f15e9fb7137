// Training curves drawn the paper's way (He et al., Figure 6): error in percent against iterations,
// training error dashed and thin, test error bold, one colour per net, optionally one panel per
// family (plain | ResNet). The chart is a Vega-Lite spec rendered to SVG by Vega in Node: no
// browser, no canvas. Vega is imported when a chart is drawn, so the package's import stays light.
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { readMetrics, type MetricsRecord } from './metrics.js';

export interface CurveRun {
  /** The legend's name for this run, e.g. 'resnet20'. */
  label: string;
  records: MetricsRecord[];
  /** Runs with the same colour key share a colour (e.g. '20-layer' in both panels). Default: label. */
  colour?: string;
  /** Draws one panel per distinct value, in order of first appearance. */
  panel?: string;
}

export interface PlotOptions {
  title?: string;
  /** Upper end of the error axis in percent. Default: fitted to the data. */
  maxErrorPercent?: number;
  /** One panel's size in pixels. Default 420 x 300. */
  width?: number;
  height?: number;
}

interface Point {
  series: string;
  colour: string;
  panel: string;
  split: 'train' | 'test';
  iteration: number;
  error: number;
}

/** The points of every series: one training series and one test series per run (when it has them). */
export function curvePoints(runs: CurveRun[]): Point[] {
  const points: Point[] = [];
  for (const run of runs) {
    const common = { colour: run.colour ?? run.label, panel: run.panel ?? '' };
    const iterations = run.records.filter((r) => r.type === 'iteration');
    const epochs = run.records.filter((r) => r.type === 'epoch');
    // Per-iteration windows when the run has them; per-epoch means for runs logged more coarsely.
    for (const r of iterations.length > 0 ? iterations : epochs) {
      points.push({ ...common, series: `${run.label} train`, split: 'train', iteration: r.iteration, error: 100 * r.trainError });
    }
    for (const r of epochs) {
      if (r.testError !== undefined) points.push({ ...common, series: `${run.label} test`, split: 'test', iteration: r.iteration, error: 100 * r.testError });
    }
  }
  return points;
}

/** The Vega-Lite specification of the chart (exported for callers who render it elsewhere). */
export function curvesSpec(runs: CurveRun[], options: PlotOptions = {}): Record<string, unknown> {
  const points = curvePoints(runs);
  if (points.length === 0) throw new InvalidArgumentError('expected runs with at least one iteration or epoch record, got none');
  const panels = [...new Set(runs.map((r) => r.panel ?? ''))];
  const colours = [...new Set(runs.map((r) => r.colour ?? r.label))];
  const yScale = options.maxErrorPercent === undefined ? { zero: true } : { domain: [0, options.maxErrorPercent], clamp: true };
  const layer = {
    width: options.width ?? 420,
    height: options.height ?? 300,
    mark: { type: 'line', interpolate: 'linear' },
    encoding: {
      x: { field: 'iteration', type: 'quantitative', title: 'iterations', axis: { format: '~s' } },
      y: { field: 'error', type: 'quantitative', title: 'error (%)', scale: yScale },
      color: { field: 'colour', type: 'nominal', title: 'net', sort: colours },
      strokeDash: { field: 'split', type: 'nominal', title: 'curve', sort: ['train', 'test'], scale: { domain: ['train', 'test'], range: [[5, 3], [1, 0]] } },
      strokeWidth: { field: 'split', type: 'ordinal', sort: ['train', 'test'], scale: { domain: ['train', 'test'], range: [1, 2.5] }, legend: null },
      detail: { field: 'series', type: 'nominal' },
      order: { field: 'iteration', type: 'quantitative' },
    },
  };
  const base = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: options.title ?? '', subtitle: 'dashed: training error, bold: test error' },
    data: { values: points },
    config: { background: 'white', font: 'sans-serif' },
  };
  if (panels.length === 1 && panels[0] === '') return { ...base, ...layer };
  return { ...base, facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panels } }, spec: layer };
}

/** Renders the runs' curves as an SVG document. */
export async function plotCurves(runs: CurveRun[], options: PlotOptions = {}): Promise<string> {
  const spec = curvesSpec(runs, options);
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  // Vega-Lite's warnings (none expected for this spec) would go to the console; keep them quiet.
  const quiet = { level: () => quiet, error: (...m: unknown[]) => { throw new Error(m.join(' ')); }, warn: () => quiet, info: () => quiet, debug: () => quiet };
  const compiled = vegaLite.compile(spec as never, { logger: quiet as never });
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * A run as `resnet plot` reads it: a run folder holding metrics.jsonl, or a metrics file itself.
 * The label is the run record's arch, or the folder's name when the file has no run record.
 */
export async function loadRun(path: string): Promise<CurveRun> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'metrics.jsonl');
  } catch {
    // readMetrics says what is wrong with the path.
  }
  const records = await readMetrics(file);
  const run = records.find((r) => r.type === 'run');
  return { label: run?.arch ?? basename(path), records };
}
