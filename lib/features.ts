// Feature maps for detection and retrieval backbones: which maps a model has, their strides and
// channel counts, derived from its config the way the network is built.
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

/** 'stem', 'layer1' ... 'layerN', 'pool', with the stride and channels of each. */
export function featureLayout(config: ResNetConfig): FeatureLayout[] {
  const expansion = config.block === 'bottleneck' ? 4 : 1;
  let stride = config.stem === 'imagenet' ? 4 : 1;
  const out: FeatureLayout[] = [{ name: 'stem', stride, channels: config.widths[0]! }];
  config.widths.forEach((width, i) => {
    if (i > 0 && !config.replaceStrideWithDilation[i - 1]) stride *= 2;
    out.push({ name: `layer${i + 1}`, stride, channels: width * expansion });
  });
  out.push({ name: 'pool', stride, channels: config.widths.at(-1)! * expansion });
  return out;
}
