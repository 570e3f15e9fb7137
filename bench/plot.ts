// Draws the inference table as an SVG bar chart: images/s of every runtime, one group per model
// and batch size, from bench/results/inference.json (written by bench/inference.ts).
//
//   node --import=tsx bench/plot.ts [--in bench/results/inference.json] [--out bench/results/inference.svg]
//
// No plotting library: the chart is a handful of rectangles and labels.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    in: { type: 'string', default: 'bench/results/inference.json' },
    out: { type: 'string', default: 'bench/results/inference.svg' },
  },
});

interface Row { runtime: string; arch: string; batch: number; imagesPerSecond: number }
const result = JSON.parse(readFileSync(values.in, 'utf8')) as { rows: Row[]; environment?: { date?: string } };

const labels: Record<string, string> = {
  ours: 'libtorch-resnet (default engine)',
  'ours-direct': 'libtorch-resnet, direct convolutions',
  'ours-torchscript': 'libtorch-resnet, TorchScript engine',
  'ours-bfloat16': 'libtorch-resnet, bfloat16',
  onnxruntime: 'onnxruntime-node',
  'pytorch-eager': 'PyTorch eager',
  'pytorch-optimized': 'PyTorch optimize_for_inference',
};
const colours = ['#1f77b4', '#6baed6', '#9ecae1', '#17becf', '#ff7f0e', '#d62728', '#9467bd', '#8c564b'];
const runtimes = [...new Set(result.rows.map((r) => r.runtime))];
const groups = [...new Set(result.rows.map((r) => `${r.arch} batch ${r.batch}`))];
const max = Math.max(...result.rows.map((r) => r.imagesPerSecond));

const barHeight = 14;
const groupGap = 18;
const left = 130;
const width = 560;
const top = 40;
const groupHeight = runtimes.length * barHeight + groupGap;
const legendTop = top + groups.length * groupHeight + 10;
const height = legendTop + runtimes.length * 18 + 10;
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

const parts: string[] = [];
parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 90}" height="${height}" font-family="sans-serif" font-size="11">`);
parts.push(`<text x="10" y="20" font-size="13">Forward throughput, 224×224, 2 threads (images/s, higher is better) ${escape(result.environment?.date ?? '')}</text>`);
groups.forEach((group, g) => {
  const y0 = top + g * groupHeight;
  parts.push(`<text x="10" y="${y0 + (runtimes.length * barHeight) / 2 + 4}">${escape(group)}</text>`);
  runtimes.forEach((runtime, i) => {
    const row = result.rows.find((r) => `${r.arch} batch ${r.batch}` === group && r.runtime === runtime);
    if (!row) return;
    const w = (row.imagesPerSecond / max) * width;
    const y = y0 + i * barHeight;
    parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 2}" fill="${colours[i % colours.length]}"/>`);
    parts.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barHeight - 4}">${row.imagesPerSecond.toFixed(1)}</text>`);
  });
});
runtimes.forEach((runtime, i) => {
  const y = legendTop + i * 18;
  parts.push(`<rect x="${left}" y="${y}" width="12" height="12" fill="${colours[i % colours.length]}"/>`);
  parts.push(`<text x="${left + 18}" y="${y + 10}">${escape(labels[runtime] ?? runtime)}</text>`);
});
parts.push('</svg>');
writeFileSync(values.out, parts.join('\n') + '\n');
console.log(`wrote ${values.out} (${groups.length} groups, ${runtimes.length} runtimes)`);
