// Resolves and validates the options of the builders and of createResNet() into one config,
// raising torchvision's own errors for combinations torchvision refuses.
import { randomInt } from 'node:crypto';
import { type ArchitectureSpec, type BlockType } from './architectures.js';
import { InvalidArgumentError } from './errors.js';
import * as v from './validate.js';

/** Options every builder takes (torchvision's names in camelCase). */
export interface ModelOptions {
  /** Pretrained weights. Only `null` (random initialisation) is available in this version. */
  weights?: null;
  numClasses?: number;
  zeroInitResidual?: boolean;
  replaceStrideWithDilation?: [boolean, boolean, boolean];
  /** Channels of the input images, e.g. 1 for grayscale data. */
  inChannels?: number;
  device?: string;
  /** Seed of the random initialisation; the same seed gives the same weights. Random if omitted. */
  seed?: number;
}

/** What createResNet() takes: a whole spec plus the builder options. */
export interface ResNetSpecOptions extends ModelOptions {
  block: BlockType;
  layers: [number, number, number, number];
  groups?: number;
  widthPerGroup?: number;
}

/** The fully resolved configuration of a model (`model.config`). */
export interface ResNetConfig {
  arch: string;
  block: BlockType;
  layers: [number, number, number, number];
  groups: number;
  widthPerGroup: number;
  numClasses: number;
  zeroInitResidual: boolean;
  replaceStrideWithDilation: [boolean, boolean, boolean];
  inChannels: number;
  device: string;
  seed: number;
  weights: null;
}

export const builderOptionNames = [
  'weights',
  'numClasses',
  'zeroInitResidual',
  'replaceStrideWithDilation',
  'inChannels',
  'device',
  'seed',
] as const;

export const specOptionNames = [...builderOptionNames, 'block', 'layers', 'groups', 'widthPerGroup'] as const;

function dilationFlags(value: unknown): [boolean, boolean, boolean] {
  if (!Array.isArray(value) || !value.every((flag) => typeof flag === 'boolean')) {
    throw v.invalid('an array of 3 booleans', 'replaceStrideWithDilation', value);
  }
  if (value.length !== 3) {
    const shown = value.map((flag) => (flag ? 'True' : 'False')).join(', ');
    throw new InvalidArgumentError(
      `replace_stride_with_dilation should be None or a 3-element tuple, got [${shown}]`,
    );
  }
  return [value[0] as boolean, value[1] as boolean, value[2] as boolean];
}

/** The dilation each block of the network gets, walked exactly as torchvision's _make_layer. */
function blockDilations(layers: readonly number[], flags: readonly boolean[]): number[] {
  const out: number[] = [];
  let dilation = 1;
  layers.forEach((blocks, stage) => {
    const previous = dilation;
    if (stage > 0 && flags[stage - 1]) dilation *= 2;
    out.push(previous);
    for (let i = 1; i < blocks; i++) out.push(dilation);
  });
  return out;
}

function checkBlockCombination(config: ResNetConfig): void {
  if (config.block !== 'basic') return;
  if (config.groups !== 1 || config.widthPerGroup !== 64) {
    throw new InvalidArgumentError('BasicBlock only supports groups=1 and base_width=64');
  }
  if (blockDilations(config.layers, config.replaceStrideWithDilation).some((d) => d > 1)) {
    throw new InvalidArgumentError('Dilation > 1 not supported in BasicBlock');
  }
}

function layersOf(value: unknown): [number, number, number, number] {
  if (!Array.isArray(value) || value.length !== 4) throw v.invalid('an array of 4 positive integers', 'layers', value);
  return value.map((n, i) => v.positiveInteger(`layers[${i}]`, n)) as [number, number, number, number];
}

export function resolveConfig(
  arch: string,
  spec: ArchitectureSpec,
  options: ModelOptions,
): ResNetConfig {
  if (options.weights !== undefined && options.weights !== null) {
    throw v.invalid('null (pretrained weights are not available in this version)', 'weights', options.weights);
  }
  const config: ResNetConfig = {
    arch,
    block: v.oneOf('block', spec.block, ['basic', 'bottleneck'] as const),
    layers: layersOf(spec.layers),
    groups: v.positiveInteger('groups', spec.groups),
    widthPerGroup: v.positiveInteger('widthPerGroup', spec.widthPerGroup),
    numClasses: v.positiveInteger('numClasses', options.numClasses ?? 1000),
    zeroInitResidual: v.boolean('zeroInitResidual', options.zeroInitResidual ?? false),
    replaceStrideWithDilation: dilationFlags(options.replaceStrideWithDilation ?? [false, false, false]),
    inChannels: v.positiveInteger('inChannels', options.inChannels ?? 3),
    device: v.device('device', options.device ?? 'cpu'),
    seed: v.nonNegativeInteger('seed', options.seed ?? randomInt(2 ** 47)),
    weights: null,
  };
  checkBlockCombination(config);
  return config;
}
