// torchvision's model builders, same names, same options (camelCase), all async.
import { architectures, type ArchitectureName, type ArchitectureSpec } from './architectures.js';
import { ResNet } from './model.js';
import {
  builderOptionNames,
  cifarOptionNames,
  resolveConfig,
  specOptionNames,
  type CifarModelOptions,
  type ModelOptions,
  type ResNetSpecOptions,
} from './options.js';
import { InvalidArgumentError } from './errors.js';
import * as v from './validate.js';
import { WeightsError } from './errors.js';
import { readWeightsFile } from './weights/files.js';
import { readModelMetadata, type ModelMetadata } from './weights/model-metadata.js';
import type { Tensor } from './tensor.js';
import { weightsEntry } from './weights/registry.js';

/** torchvision's _ovewrite_named_param: pretrained weights fix some options. */
function fixedByWeights(name: string, given: unknown, expected: unknown): void {
  if (given !== undefined && given !== expected) {
    throw new InvalidArgumentError(`The parameter '${name}' expected value ${String(expected)} but got ${String(given)} instead.`);
  }
}

/** Loads `weights` (a path or URL) into a fresh model; the model is disposed if that fails. */
async function withWeights(model: ResNet, weights: string, progress: ModelOptions['progress'], signal: ModelOptions['signal']): Promise<ResNet> {
  try {
    await model.load(weights, { ...(progress !== undefined && { progress }), ...(signal !== undefined && { signal }) });
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

// 'IMAGENET1K_V2', 'DEFAULT': an enum-like name means the registry; anything else is a path or URL.
export const isRegistryName = (weights: string) => /^[A-Z][A-Z0-9_]*$/.test(weights);

async function build(arch: Exclude<ArchitectureName, CifarName>, options: ModelOptions = {}): Promise<ResNet> {
  v.knownKeys(arch, v.plainObject('options', options), builderOptionNames);
  const { weights } = options;
  if (typeof weights === 'string' && isRegistryName(weights)) {
    const entry = weightsEntry(arch, weights);
    fixedByWeights('num_classes', options.numClasses, entry.numClasses);
    fixedByWeights('in_channels', options.inChannels, 3);
    const config = resolveConfig(arch, architectures[arch], { ...options, numClasses: entry.numClasses, weights: entry.name });
    return withWeights(await ResNet.create(config, entry), entry.url, options.progress ?? true, options.signal);
  }
  const model = await ResNet.create(resolveConfig(arch, architectures[arch], options));
  return typeof weights === 'string' ? withWeights(model, weights, options.progress, options.signal) : model;
}

/** A ResNet from a whole spec: any block type, stage depths, groups and width. */
export async function createResNet(options: ResNetSpecOptions): Promise<ResNet> {
  const o = v.plainObject('options', options);
  v.knownKeys('createResNet', o, specOptionNames);
  const spec: ArchitectureSpec = {
    block: options.block,
    layers: options.layers,
    groups: options.groups ?? 1,
    widthPerGroup: options.widthPerGroup ?? 64,
    stem: options.stem ?? 'imagenet',
    widths: options.widths ?? (options.stem === 'cifar' ? [16, 32, 64] : [64, 128, 256, 512]),
    shortcut: options.shortcut ?? 'B',
    numClasses: 1000,
  };
  if (typeof options.weights === 'string' && isRegistryName(options.weights)) {
    throw v.invalid('a path, a URL or null (named weights belong to the builders, e.g. resnet50())', 'weights', options.weights);
  }
  const model = await ResNet.create(resolveConfig('resnet', spec, options));
  return typeof options.weights === 'string' ? withWeights(model, options.weights, options.progress, options.signal) : model;
}

export const resnet18 = (options?: ModelOptions) => build('resnet18', options);
export const resnet34 = (options?: ModelOptions) => build('resnet34', options);
export const resnet50 = (options?: ModelOptions) => build('resnet50', options);
export const resnet101 = (options?: ModelOptions) => build('resnet101', options);
export const resnet152 = (options?: ModelOptions) => build('resnet152', options);
export const resnext50_32x4d = (options?: ModelOptions) => build('resnext50_32x4d', options);
export const resnext101_32x8d = (options?: ModelOptions) => build('resnext101_32x8d', options);
export const resnext101_64x4d = (options?: ModelOptions) => build('resnext101_64x4d', options);
export const wide_resnet50_2 = (options?: ModelOptions) => build('wide_resnet50_2', options);
export const wide_resnet101_2 = (options?: ModelOptions) => build('wide_resnet101_2', options);

type CifarName = 'resnet20' | 'resnet32' | 'resnet44' | 'resnet56' | 'resnet110' | 'resnet1202';

/** The paper's CIFAR nets: option-A shortcuts by default, 'B' for projections, plain for none. */
async function buildCifar(arch: CifarName, options: CifarModelOptions = {}): Promise<ResNet> {
  v.knownKeys(arch, v.plainObject('options', options), cifarOptionNames);
  const { shortcut, plain, ...rest } = options;
  if (typeof rest.weights === 'string' && isRegistryName(rest.weights)) {
    throw v.invalid('a path, a URL or null (there are no published weights for the CIFAR nets)', 'weights', rest.weights);
  }
  const kind = shortcut === undefined ? 'A' : v.oneOf('shortcut', shortcut, ['A', 'B'] as const);
  const isPlain = v.boolean('plain', plain ?? false);
  const spec = { ...architectures[arch], shortcut: isPlain ? ('none' as const) : kind };
  const name = isPlain ? `plain${arch.slice('resnet'.length)}` : arch;
  const model = await ResNet.create(resolveConfig(name, spec, rest));
  return typeof rest.weights === 'string' ? withWeights(model, rest.weights, rest.progress, rest.signal) : model;
}

export const resnet20 = (options?: CifarModelOptions) => buildCifar('resnet20', options);
export const resnet32 = (options?: CifarModelOptions) => buildCifar('resnet32', options);
export const resnet44 = (options?: CifarModelOptions) => buildCifar('resnet44', options);
export const resnet56 = (options?: CifarModelOptions) => buildCifar('resnet56', options);
export const resnet110 = (options?: CifarModelOptions) => buildCifar('resnet110', options);
export const resnet1202 = (options?: CifarModelOptions) => buildCifar('resnet1202', options);

/** Any builder by name, e.g. from a CLI flag or a config file. */
export async function createModel(arch: ArchitectureName, options?: ModelOptions | CifarModelOptions): Promise<ResNet> {
  v.oneOf('arch', arch, Object.keys(architectures) as ArchitectureName[]);
  return architectures[arch].stem === 'cifar'
    ? buildCifar(arch as CifarName, options)
    : build(arch as Exclude<ArchitectureName, CifarName>, options);
}

/** What loadModel() takes besides the file: where and how to run the model. */
export type LoadModelOptions = Pick<ModelOptions, 'device' | 'precision' | 'memoryFormat'>;

/**
 * A model rebuilt from a file model.save() wrote (or `resnet train --out`): the architecture, its
 * options, the weights, the classes and the preprocessing all come from the file, e.g.
 * `const model = await loadModel('pets.safetensors'); await model.classify('cat.jpg')`.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<ResNet> {
  if (typeof path !== 'string' || path === '') throw v.invalid('a file path', 'path', path);
  v.knownKeys('loadModel', v.plainObject('options', options), ['device', 'precision', 'memoryFormat']);
  const file = await readWeightsFile(path);
  const description = await readModelMetadata(path, file.metadata);
  if (description === null) {
    throw new WeightsError(
      `'${path}' has no model description (model.save() of libtorch-resnet writes one); build the architecture, e.g. resnet18({ numClasses: 10 }), and call model.load('${path}')`,
    );
  }
  return modelFromDescription(description, file.tensors, path, options);
}

/** @internal loadModel()'s second half, for callers that have read the file already. */
export async function modelFromDescription(description: ModelMetadata, tensors: Record<string, Tensor>, path: string, options: LoadModelOptions = {}): Promise<ResNet> {
  const { structure } = description;
  const model = await ResNet.create(resolveConfig(description.arch, structure, { ...structure, ...options, weights: path, seed: 0 }));
  try {
    await model.loadStateDict(tensors);
    model.adopt(description);
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
