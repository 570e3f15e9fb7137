// torchvision's pretrained weights for the ten builders, as recorded in registry.json. That file is
// generated from torchvision 0.14 itself by scripts/generate-registry.py: edit the script, not it.
import { readFileSync } from 'node:fs';
import { architectureNames } from '../architectures.js';
import { oneOf } from '../validate.js';

export interface WeightsTransforms {
  /** Shorter side is resized to this, then the centre is cropped (torchvision's ImageClassification). */
  resizeSize: number;
  cropSize: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  interpolation: string;
}

export interface WeightsEntry {
  arch: string;
  /** The enum name, 'DEFAULT' already resolved (e.g. 'IMAGENET1K_V2'). */
  name: string;
  url: string;
  /** The file name torch.hub caches it under, hash prefix included ('resnet50-11ad3fa6.pth'). */
  fileName: string;
  numParams: number;
  /** ImageNet-1K validation accuracy, in percent. */
  metrics: { acc1: number; acc5: number };
  /** Computed by the generator (torchvision 0.14 does not publish it). */
  gflops: number;
  /** Bytes; null because torchvision 0.14 does not record it. */
  fileSize: number | null;
  /** [height, width] */
  minSize: readonly [number, number];
  recipe: string;
  transforms: WeightsTransforms;
  numClasses: 1000;
}

interface RawEntry {
  url: string;
  file_name: string;
  num_params: number;
  acc1: number;
  acc5: number;
  gflops: number;
  file_size: number | null;
  min_size: [number, number];
  recipe: string;
  transforms: { resize_size: number; crop_size: number; mean: [number, number, number]; std: [number, number, number]; interpolation: string };
  num_classes: 1000;
}

interface RawRegistry {
  torchvision_version: string;
  categories: string[];
  architectures: Record<string, { default: string; weights: Record<string, RawEntry> }>;
}

// The JSON sits next to this module under tsx (lib/weights/). tsc does not copy it into dist/, so
// from dist/lib/weights/ it is read from the package's own lib/weights/ (which is published).
const candidates = ['./registry.json', '../../../lib/weights/registry.json'];

let raw: RawRegistry | undefined;

function registry(): RawRegistry {
  if (raw) return raw;
  for (const candidate of candidates) {
    try {
      raw = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as RawRegistry;
      return raw;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error(`registry.json not found next to ${import.meta.url} nor in the package's lib/weights/`);
}

/** The torchvision version the registry was generated from. */
export function registryTorchvisionVersion(): string {
  return registry().torchvision_version;
}

/** The weights names of an architecture, 'DEFAULT' last (e.g. ['IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT']). */
export function weightsNames(arch: string): readonly string[] {
  const known = oneOf('arch', arch, architectureNames);
  return [...Object.keys(registry().architectures[known]!.weights), 'DEFAULT'];
}

const entries = new Map<string, WeightsEntry>();

/** torchvision's `<Arch>_Weights.<name>`; 'DEFAULT' resolves as in torchvision. */
export function weightsEntry(arch: string, name: string): WeightsEntry {
  const names = weightsNames(arch);
  oneOf(`weights of ${arch}`, name, names);
  const forArch = registry().architectures[arch]!;
  const resolved = name === 'DEFAULT' ? forArch.default : name;
  const key = `${arch}.${resolved}`;
  let entry = entries.get(key);
  if (!entry) {
    const e = forArch.weights[resolved]!;
    const t = e.transforms;
    // Frozen and cached: every caller shares one object, so none may change it for the others.
    entry = deepFreeze({
      arch,
      name: resolved,
      url: e.url,
      fileName: e.file_name,
      numParams: e.num_params,
      metrics: { acc1: e.acc1, acc5: e.acc5 },
      gflops: e.gflops,
      fileSize: e.file_size,
      minSize: e.min_size,
      recipe: e.recipe,
      transforms: { resizeSize: t.resize_size, cropSize: t.crop_size, mean: t.mean, std: t.std, interpolation: t.interpolation },
      numClasses: e.num_classes,
    });
    entries.set(key, entry);
  }
  return entry;
}

/** The 1000 ImageNet-1K category names, in class-index order (the same for every entry). */
export function imagenetCategories(): readonly string[] {
  const { categories } = registry();
  if (!Object.isFrozen(categories)) Object.freeze(categories);
  return categories;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
