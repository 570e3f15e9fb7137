// torchvision's model builders, same names, same options (camelCase), all async.
import { architectures, type ArchitectureName } from './architectures.js';
import { ResNet } from './model.js';
import { builderOptionNames, resolveConfig, specOptionNames, type ModelOptions, type ResNetSpecOptions } from './options.js';
import * as v from './validate.js';

async function build(arch: ArchitectureName, options: ModelOptions = {}): Promise<ResNet> {
  v.knownKeys(arch, v.plainObject('options', options), builderOptionNames);
  return ResNet.create(resolveConfig(arch, architectures[arch], options));
}

/** A ResNet from a whole spec: any block type, stage depths, groups and width. */
export async function createResNet(options: ResNetSpecOptions): Promise<ResNet> {
  const o = v.plainObject('options', options);
  v.knownKeys('createResNet', o, specOptionNames);
  const spec = {
    block: options.block,
    layers: options.layers,
    groups: options.groups ?? 1,
    widthPerGroup: options.widthPerGroup ?? 64,
  };
  return ResNet.create(resolveConfig('resnet', spec, options));
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

/** Any of the ten builders by name, e.g. from a CLI flag or a config file. */
export async function createModel(arch: ArchitectureName, options?: ModelOptions): Promise<ResNet> {
  v.oneOf('arch', arch, Object.keys(architectures) as ArchitectureName[]);
  return build(arch, options);
}
