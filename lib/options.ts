// Resolves and validates the options of the builders and of createResNet() into one config,
// raising torchvision's own errors for combinations torchvision refuses.
import { randomInt } from 'node:crypto';
import { type ArchitectureSpec, type BlockType, type ShortcutType, type StemType } from './architectures.js';
import { InvalidArgumentError } from './errors.js';
import { describeNetwork } from './features.js';
import * as v from './validate.js';
import type { ProgressOption } from './weights/progress.js';

/** Options every builder takes (torchvision's names in camelCase). */
export interface ModelOptions {
  /**
   * Pretrained weights: 'IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT' (torchvision's, downloaded once
   * into torch.hub's cache), a .pth / .safetensors path, a URL, or null for random initialisation.
   */
  weights?: string | null;
  /** Download progress: true for a bar on stderr (when it is a terminal), or a callback. */
  progress?: ProgressOption;
  /** Aborts a download of the weights (a DownloadError whose cause is the signal's reason). */
  signal?: AbortSignal;
  numClasses?: number;
  zeroInitResidual?: boolean;
  /** One flag per stage after the first (3 for ImageNet nets, 2 for the CIFAR ones). */
  replaceStrideWithDilation?: boolean[];
  /** Channels of the input images, e.g. 1 for grayscale data. */
  inChannels?: number;
  device?: string;
  /**
   * Arithmetic of forwards and training steps: 'float32' (default), or autocast to 'bfloat16'
   * (CPU and CUDA) or 'float16' (CUDA; training then scales the loss like GradScaler).
   */
  precision?: Precision;
  /** 'channels_last' keeps convolution weights and inputs in NHWC (faster on GPUs' tensor cores). */
  memoryFormat?: MemoryFormat;
  /** Seed of the random initialisation; the same seed gives the same weights. Random if omitted. */
  seed?: number;
}

export type Precision = 'float32' | 'bfloat16' | 'float16';
export type MemoryFormat = 'contiguous' | 'channels_last';

/** Extra options of the paper's CIFAR nets (resnet20 ... resnet1202). */
export interface CifarModelOptions extends ModelOptions {
  /** 'A' (the paper's CIFAR choice, default): zero-padded identity; 'B': 1x1 projections. */
  shortcut?: 'A' | 'B';
  /** The same net without any shortcut (the paper's "plain" baseline). */
  plain?: boolean;
}

/** What createResNet() takes: a whole spec plus the builder options. */
export interface ResNetSpecOptions extends ModelOptions {
  block: BlockType;
  layers: number[];
  groups?: number;
  widthPerGroup?: number;
  /** Default 'imagenet'. */
  stem?: StemType;
  /** Default [64, 128, 256, 512] (one entry per stage). */
  widths?: number[];
  /** Default 'B'. */
  shortcut?: ShortcutType;
}

/** The fully resolved configuration of a model (`model.config`). */
export interface ResNetConfig {
  arch: string;
  block: BlockType;
  stem: StemType;
  widths: number[];
  shortcut: ShortcutType;
  layers: number[];
  groups: number;
  widthPerGroup: number;
  numClasses: number;
  zeroInitResidual: boolean;
  replaceStrideWithDilation: boolean[];
  inChannels: number;
  device: string;
  precision: Precision;
  memoryFormat: MemoryFormat;
  seed: number;
  /** The weights the model was built from: a resolved registry name, a path or URL, or null. */
  weights: string | null;
}

export const builderOptionNames = [
  'weights',
  'progress',
  'signal',
  'numClasses',
  'zeroInitResidual',
  'replaceStrideWithDilation',
  'inChannels',
  'device',
  'precision',
  'memoryFormat',
  'seed',
] as const;

export const cifarOptionNames = [...builderOptionNames, 'shortcut', 'plain'] as const;

export const specOptionNames = [...builderOptionNames, 'block', 'layers', 'groups', 'widthPerGroup', 'stem', 'widths', 'shortcut'] as const;

function dilationFlags(value: unknown, stages: number): boolean[] {
  const count = stages - 1;
  if (!Array.isArray(value) || !value.every((flag) => typeof flag === 'boolean')) {
    throw v.invalid(`an array of ${count} booleans`, 'replaceStrideWithDilation', value);
  }
  if (value.length !== count) {
    const shown = value.map((flag) => (flag ? 'True' : 'False')).join(', ');
    // torchvision's words for its four-stage nets; the same shape of message otherwise.
    throw new InvalidArgumentError(
      `replace_stride_with_dilation should be None or a ${count}-element tuple, got [${shown}]`,
    );
  }
  return value as boolean[];
}

function checkBlockCombination(config: ResNetConfig): void {
  if (config.block !== 'basic') return;
  if (config.groups !== 1 || config.widthPerGroup !== 64) {
    throw new InvalidArgumentError('BasicBlock only supports groups=1 and base_width=64');
  }
  // The dilation each block gets is the network description's (native/core/network.cpp, torchvision's _make_layer).
  if (describeNetwork(config).blocks.some((b) => b.dilation > 1)) {
    throw new InvalidArgumentError('Dilation > 1 not supported in BasicBlock');
  }
}

function positiveIntegers(name: string, value: unknown, count?: number): number[] {
  const expected = `an array of ${count ?? 'one or more'} positive integers`;
  if (!Array.isArray(value) || value.length === 0 || (count !== undefined && value.length !== count)) {
    throw v.invalid(expected, name, value);
  }
  return value.map((n, i) => v.positiveInteger(`${name}[${i}]`, n));
}

export function resolveConfig(
  arch: string,
  spec: ArchitectureSpec,
  options: ModelOptions,
): ResNetConfig {
  const weights = options.weights ?? null;
  if (weights !== null && (typeof weights !== 'string' || weights === '')) {
    throw v.invalid("a weights name ('DEFAULT', 'IMAGENET1K_V1', ...), a path, a URL or null", 'weights', weights);
  }
  const { progress } = options;
  if (progress !== undefined && typeof progress !== 'boolean' && typeof progress !== 'function') {
    throw v.invalid('a boolean or a function', 'progress', progress);
  }
  const widths = positiveIntegers('widths', spec.widths);
  const config: ResNetConfig = {
    arch,
    block: v.oneOf('block', spec.block, ['basic', 'bottleneck'] as const),
    stem: v.oneOf('stem', spec.stem, ['imagenet', 'cifar'] as const),
    widths,
    shortcut: v.oneOf('shortcut', spec.shortcut, ['A', 'B', 'none'] as const),
    layers: positiveIntegers('layers', spec.layers, widths.length),
    groups: v.positiveInteger('groups', spec.groups),
    widthPerGroup: v.positiveInteger('widthPerGroup', spec.widthPerGroup),
    numClasses: v.positiveInteger('numClasses', options.numClasses ?? spec.numClasses),
    zeroInitResidual: v.boolean('zeroInitResidual', options.zeroInitResidual ?? false),
    replaceStrideWithDilation: dilationFlags(options.replaceStrideWithDilation ?? widths.slice(1).map(() => false), widths.length),
    inChannels: v.positiveInteger('inChannels', options.inChannels ?? 3),
    device: v.device('device', options.device ?? 'cpu'),
    precision: v.oneOf('precision', options.precision ?? 'float32', ['float32', 'bfloat16', 'float16'] as const),
    memoryFormat: v.oneOf('memoryFormat', options.memoryFormat ?? 'contiguous', ['contiguous', 'channels_last'] as const),
    seed: v.nonNegativeInteger('seed', options.seed ?? randomInt(2 ** 47)),
    weights,
  };
  checkBlockCombination(config);
  return config;
}
