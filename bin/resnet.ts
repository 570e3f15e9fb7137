#!/usr/bin/env node
// The `resnet` command line. Exit codes: 0 success, 1 the work failed (a ResNetError or I/O),
// 2 the command line itself was wrong. --json prints one JSON object on stdout for scripts.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ownEntry } from '../lib/validate.js';
import { architectureNames, imagenetArchitectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel } from '../lib/builders.js';

import { torchHubCheckpointsDir, downloadWeights } from '../lib/weights/download.js';
import { formatFor, loadWeights, saveWeights } from '../lib/weights/files.js';
import { progressReporter } from '../lib/weights/progress.js';
import { weightsEntry, weightsNames } from '../lib/weights/registry.js';
import { experiment, plot, curvesUsage } from './curves-commands.js';
import { serve, serveUsage } from './serve-command.js';
import { predict, predictUsage } from './predict-command.js';
import { evalCommand, train, trainUsage, UsageError } from './train-commands.js';

const convertUsage = `  convert <in> <out> [--key K] [--strip-prefix [P]] [--strip-module]
        .pth <-> .safetensors (format from the names); --strip-module removes 'module.'`;
const downloadUsage = `  download <arch> [--weights NAME]                     fetch torchvision's weights into torch.hub's cache`;
const infoUsage = `  info <arch> [--num-classes N]                        parameters, weights entries`;

/** `resnet <command> --help`: the command's own lines of the usage. */
const commandUsage: Record<string, string> = {
  convert: convertUsage,
  download: downloadUsage,
  info: infoUsage,
  train: trainUsage,
  eval: trainUsage,
  predict: predictUsage,
  plot: curvesUsage,
  experiment: curvesUsage,
  serve: serveUsage,
};

/** The package's version, from the package.json above this file (bin/ or dist/bin/). */
function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'libtorch-resnet' && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

const usage = `Usage: resnet <command> [options]

Commands:
${convertUsage}
${downloadUsage}
${infoUsage}
${trainUsage}
${predictUsage}
${curvesUsage}
${serveUsage}

Options:
  --json       machine-readable output on stdout
  -h, --help   this text; after a command, that command's options
  --version    the package's version

Architectures: ${architectureNames.join(', ')}`;

function output(json: boolean, human: string, data: object): void {
  console.log(json ? JSON.stringify(data) : human);
}

async function convert(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { key: { type: 'string' }, 'strip-prefix': { type: 'string' }, 'strip-module': { type: 'boolean' } },
  });
  const [input, out] = positionals;
  if (!input || !out || positionals.length > 2) throw new UsageError('convert needs <in> and <out>');
  const format = formatFor(out);
  const stripPrefix = values['strip-module'] ? true : values['strip-prefix'];
  const tensors = await loadWeights(input, {
    ...(values.key !== undefined && { key: values.key }),
    ...(stripPrefix !== undefined && { stripPrefix }),
  });
  await saveWeights(out, tensors);
  const count = Object.keys(tensors).length;
  output(json, `${input} -> ${out}: ${count} tensors (${format})`, { input, output: out, format, tensors: count });
}

function archOf(name: string | undefined): ArchitectureName {
  if (!name || !(architectureNames as string[]).includes(name)) {
    throw new UsageError(`expected an architecture (${architectureNames.join(', ')}), got ${name ?? 'nothing'}`);
  }
  return name as ArchitectureName;
}

async function download(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { weights: { type: 'string', default: 'DEFAULT' } } });
  const entry = weightsEntry(archOf(positionals[0]), values.weights);
  const reporter = progressReporter(!json, entry.fileName);
  let path: string;
  try {
    path = await downloadWeights(entry.url, reporter.onProgress ? { progress: reporter.onProgress } : {});
  } finally {
    reporter.done();
  }
  output(json, `${entry.arch} ${entry.name}: ${path}`, { arch: entry.arch, weights: entry.name, path, cacheDir: torchHubCheckpointsDir() });
}

async function info(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { 'num-classes': { type: 'string' } } });
  const arch = archOf(positionals[0]);
  const numClasses = values['num-classes'] === undefined ? 1000 : Number(values['num-classes']);
  const model = await createModel(arch, { numClasses, seed: 0 });
  const weights = (imagenetArchitectureNames as string[]).includes(arch) ? weightsNames(arch) : [];
  const data = { arch, numClasses, numParameters: model.numParameters(), config: model.config, weights };
  model.dispose();
  const entries = weights.map((name) => {
    if (name === 'DEFAULT') return `  DEFAULT (= ${weightsEntry(arch, 'DEFAULT').name})`;
    const e = weightsEntry(arch, name);
    return `  ${name}: top-1 ${e.metrics.acc1}%, resize ${e.transforms.resizeSize}, crop ${e.transforms.cropSize}, ${e.url}`;
  });
  output(
    json,
    `${arch}: ${data.numParameters.toLocaleString('en-US')} parameters (${numClasses} classes)\n` +
      (entries.length ? `weights (resnet download ${arch} --weights NAME):\n${entries.join('\n')}` : 'no pretrained weights in torchvision'),
    data,
  );
}

const commands: Record<string, (args: string[], json: boolean) => Promise<void>> = { convert, download, info, train, eval: evalCommand, predict, serve, plot, experiment };

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  if (args.length === 0 || args[0] === '-h' || args[0] === '--help') {
    console.log(usage);
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === '--version' || args[0] === '-v') {
    console.log(json ? JSON.stringify({ version: packageVersion() }) : packageVersion());
    return 0;
  }
  const help = ownEntry(commandUsage, args[0]);
  if (help !== undefined && args.slice(1).some((a) => a === '--help' || a === '-h')) {
    console.log(`Usage: resnet ${args[0]} [options]\n\n${help}`);
    return 0;
  }
  const command = ownEntry(commands, args[0]);
  try {
    if (!command) throw new UsageError(`unknown command '${args[0]}'`);
    await command(args.slice(1), json);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    const usageError = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const message = (error as Error).message;
    if (json) console.log(JSON.stringify({ error: { code: (error as { code?: string }).code ?? 'ERR_USAGE', message } }));
    else console.error(`resnet: ${message}${usageError ? `\n\n${usage}` : ''}`);
    return usageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
