// Feature maps for detection and retrieval backbones: which maps a model has, their strides and
// channel counts, read from the network's description (native/core/network.h, through the addon's
// describeNetwork), the one place that lays the network out.
import type { NativeNetworkDescription, NativeSpec } from '../types/native.js';
import { native } from './native.js';
import type { ResNetConfig } from './options.js';
import { Tensor } from './tensor.js';

/** A feature map: a float32 tensor plus where it sits in the network. */
export class FeatureMap extends Tensor<Float32Array> {
  /** Input pixels per map position along each side (the 'pool' embedding: the last stage's). */
  readonly stride: number;
  readonly channels: number;

  constructor(data: Float32Array, shape: readonly number[], stride: number, channels: number) {
    super(data, shape, 'float32');
    this.stride = stride;
    this.channels = channels;
  }
}

export interface FeatureLayout {
  name: string;
  stride: number;
  channels: number;
}

type NetworkConfig = Pick<
  ResNetConfig,
  | 'block'
  | 'stem'
  | 'shortcut'
  | 'widths'
  | 'layers'
  | 'numClasses'
  | 'zeroInitResidual'
  | 'groups'
  | 'widthPerGroup'
  | 'replaceStrideWithDilation'
  | 'inChannels'
>;

/** The part of a config the addon builds the network from. */
export function nativeSpec(config: NetworkConfig): NativeSpec {
  return {
    block: config.block,
    stem: config.stem,
    shortcut: config.shortcut,
    widths: [...config.widths],
    layers: [...config.layers],
    numClasses: config.numClasses,
    zeroInitResidual: config.zeroInitResidual,
    groups: config.groups,
    widthPerGroup: config.widthPerGroup,
    replaceStrideWithDilation: [...config.replaceStrideWithDilation],
    inChannels: config.inChannels,
  };
}

// A model's config is frozen, so its description is asked for once.
const descriptions = new WeakMap<object, NativeNetworkDescription>();

/**
 * The network a (validated) config describes, layer by layer with names equal to the state-dict
 * keys, and the layers each block and feature stage spans: what the modules and the inference
 * engines are built from.
 */
export function describeNetwork(config: NetworkConfig): NativeNetworkDescription {
  const cached = descriptions.get(config);
  if (cached) return cached;
  const description = native.describeNetwork(nativeSpec(config));
  if (Object.isFrozen(config)) descriptions.set(config, description);
  return description;
}

/** 'stem', 'layer1' ... 'layerN', 'pool', with the stride and channels of each. */
export function featureLayout(config: ResNetConfig): FeatureLayout[] {
  return describeNetwork(config).stages.map(({ name, stride, channels }) => ({ name, stride, channels }));
}
