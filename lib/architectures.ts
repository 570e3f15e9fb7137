// Every named architecture, one line of spec each: torchvision's ImageNet builders
// (torchvision/models/resnet.py, 0.14) and the paper's CIFAR-10 nets (He et al. 2016, section 4.2).

export type BlockType = 'basic' | 'bottleneck';
export type StemType = 'imagenet' | 'cifar';
/** 'B': 1x1 projection when the shape changes (torchvision); 'A': zero-padded identity; 'none': no shortcut (a plain net). */
export type ShortcutType = 'A' | 'B' | 'none';

export interface ArchitectureSpec {
  block: BlockType;
  layers: readonly number[];
  groups: number;
  widthPerGroup: number;
  stem: StemType;
  /** Planes of each stage. */
  widths: readonly number[];
  shortcut: ShortcutType;
  /** torchvision's default head size: 1000 for ImageNet nets, 10 for the CIFAR ones. */
  numClasses: number;
}

const imagenet = (block: BlockType, layers: number[], groups = 1, widthPerGroup = 64): ArchitectureSpec => ({
  block,
  layers,
  groups,
  widthPerGroup,
  stem: 'imagenet',
  widths: [64, 128, 256, 512],
  shortcut: 'B',
  numClasses: 1000,
});

/** 6n+2 layers: a 3x3 stem, three stages of n basic blocks with 16/32/64 filters, option-A shortcuts. */
const cifar = (depth: number): ArchitectureSpec => {
  const n = (depth - 2) / 6;
  return { block: 'basic', layers: [n, n, n], groups: 1, widthPerGroup: 64, stem: 'cifar', widths: [16, 32, 64], shortcut: 'A', numClasses: 10 };
};

export const architectures = {
  resnet18: imagenet('basic', [2, 2, 2, 2]),
  resnet34: imagenet('basic', [3, 4, 6, 3]),
  resnet50: imagenet('bottleneck', [3, 4, 6, 3]),
  resnet101: imagenet('bottleneck', [3, 4, 23, 3]),
  resnet152: imagenet('bottleneck', [3, 8, 36, 3]),
  resnext50_32x4d: imagenet('bottleneck', [3, 4, 6, 3], 32, 4),
  resnext101_32x8d: imagenet('bottleneck', [3, 4, 23, 3], 32, 8),
  resnext101_64x4d: imagenet('bottleneck', [3, 4, 23, 3], 64, 4),
  wide_resnet50_2: imagenet('bottleneck', [3, 4, 6, 3], 1, 128),
  wide_resnet101_2: imagenet('bottleneck', [3, 4, 23, 3], 1, 128),
  resnet20: cifar(20),
  resnet32: cifar(32),
  resnet44: cifar(44),
  resnet56: cifar(56),
  resnet110: cifar(110),
  resnet1202: cifar(1202),
} as const satisfies Record<string, ArchitectureSpec>;

export type ArchitectureName = keyof typeof architectures;

export const architectureNames = Object.keys(architectures) as ArchitectureName[];

/** The ten torchvision builders (the ones with pretrained ImageNet weights). */
export const imagenetArchitectureNames = architectureNames.filter((name) => architectures[name].stem === 'imagenet');
export const cifarArchitectureNames = architectureNames.filter((name) => architectures[name].stem === 'cifar');
