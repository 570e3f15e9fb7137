// `resnet convert`, `resnet download` and `resnet info`: weights files and architectures.
import { parseArgs } from 'node:util';
import { architectureNames, imagenetArchitectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel } from '../lib/builders.js';
import { torchHubCheckpointsDir, downloadWeights } from '../lib/weights/download.js';
import { formatFor, readWeightsFile } from '../lib/weights/files.js';
import { readModelMetadata, saveDescribed } from '../lib/weights/model-metadata.js';
import { progressReporter } from '../lib/weights/progress.js';
import { weightsEntry, weightsNames } from '../lib/weights/registry.js';
import { UsageError } from './train-commands.js';

export const convertUsage = `  convert <in> <out> [--key K] [--strip-prefix [P]] [--strip-module]
        .pth <-> .safetensors (format from the names); --strip-module removes 'module.'`;
export const downloadUsage = `  download <arch> [--weights NAME]                     fetch torchvision's weights into torch.hub's cache`;
export const infoUsage = `  info <arch> [--num-classes N]                        parameters, weights entries`;

export const convertOptions = { key: { type: 'string' }, 'strip-prefix': { type: 'string' }, 'strip-module': { type: 'boolean' } } as const;
export const downloadOptions = { weights: { type: 'string', default: 'DEFAULT' } } as const;
export const infoOptions = { 'num-classes': { type: 'string' } } as const;

function output(json: boolean, human: string, data: object): void {
  console.log(json ? JSON.stringify(data) : human);
}

export async function convert(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: convertOptions,
  });
  const [input, out] = positionals;
  if (!input || !out || positionals.length > 2) throw new UsageError('convert needs <in> and <out>');
  const format = formatFor(out);
  const stripPrefix = values['strip-module'] ? true : values['strip-prefix'];
  const { tensors, metadata } = await readWeightsFile(input, {
    ...(values.key !== undefined && { key: values.key }),
    ...(stripPrefix !== undefined && { stripPrefix }),
  });
  // The model's description (architecture, classes, preprocessing) goes along, in the new format's place.
  await saveDescribed(out, format, tensors, await readModelMetadata(input, metadata));
  const count = Object.keys(tensors).length;
  output(json, `${input} -> ${out}: ${count} tensors (${format})`, { input, output: out, format, tensors: count });
}

function archOf(name: string | undefined): ArchitectureName {
  if (!name || !(architectureNames as string[]).includes(name)) {
    throw new UsageError(`expected an architecture (${architectureNames.join(', ')}), got ${name ?? 'nothing'}`);
  }
  return name as ArchitectureName;
}

export async function download(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: downloadOptions });
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

export async function info(args: string[], json: boolean): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: infoOptions });
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

