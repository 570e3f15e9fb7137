// torchvision's transforms for streamed images, named and parameterised as torchvision's
// (torchvision/transforms/transforms.py, 0.14), as plain data so that worker threads can run them.
// A pipeline is a list: geometry (RandomResizedCrop, or Resize then CenterCrop), an optional
// RandomHorizontalFlip, Normalize (always: it makes the float tensor), an optional RandomErasing.
import { InvalidArgumentError } from '../errors.js';
import { roundHalfEven } from '../data/augment.js';
import * as v from '../validate.js';

export type Interpolation = 'bilinear' | 'bicubic' | 'lanczos';

export type Transform =
  | { type: 'RandomResizedCrop'; size: [number, number]; scale: [number, number]; ratio: [number, number]; interpolation: Interpolation }
  | { type: 'Resize'; size: number; interpolation: Interpolation }
  | { type: 'CenterCrop'; size: [number, number] }
  | { type: 'RandomHorizontalFlip'; p: number }
  | { type: 'Normalize'; mean: [number, number, number]; std: [number, number, number] }
  | { type: 'RandomErasing'; p: number; scale: [number, number]; ratio: [number, number]; value: number };

const interpolations = ['bilinear', 'bicubic', 'lanczos'] as const;

function pair(name: string, value: unknown, check: (x: number) => boolean, what: string): [number, number] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((x) => typeof x === 'number' && Number.isFinite(x) && check(x)) || value[0] > value[1]) {
    throw v.invalid(`[low, high] with low <= high, ${what}`, name, value);
  }
  return [value[0], value[1]];
}

function size2(name: string, value: unknown): [number, number] {
  if (typeof value === 'number') return [v.positiveInteger(name, value), value];
  if (Array.isArray(value) && value.length === 2) return [v.positiveInteger(`${name}[0]`, value[0]), v.positiveInteger(`${name}[1]`, value[1])];
  throw v.invalid('a positive integer or [height, width]', name, value);
}

function probability(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw v.invalid('a probability in [0, 1]', name, value);
  return value;
}

/** torchvision's transforms by name: `T.RandomResizedCrop(224)`, `T.Normalize(mean, std)` ... */
export const T = {
  /** A random area (scale) and aspect ratio (ratio) of the image, resized to size. */
  RandomResizedCrop(size: number | [number, number], options: { scale?: [number, number]; ratio?: [number, number]; interpolation?: Interpolation } = {}): Transform {
    v.knownKeys('RandomResizedCrop', v.plainObject('options', options), ['scale', 'ratio', 'interpolation']);
    return {
      type: 'RandomResizedCrop',
      size: size2('size', size),
      scale: pair('scale', options.scale ?? [0.08, 1], (x) => x > 0 && x <= 1, 'in (0, 1]'),
      ratio: pair('ratio', options.ratio ?? [3 / 4, 4 / 3], (x) => x > 0, 'positive'),
      interpolation: v.oneOf('interpolation', options.interpolation ?? 'bilinear', interpolations),
    };
  },
  /** The shorter side to size (torchvision's Resize(int)), antialiased. */
  Resize(size: number, options: { interpolation?: Interpolation } = {}): Transform {
    v.knownKeys('Resize', v.plainObject('options', options), ['interpolation']);
    return { type: 'Resize', size: v.positiveInteger('size', size), interpolation: v.oneOf('interpolation', options.interpolation ?? 'bilinear', interpolations) };
  },
  CenterCrop(size: number | [number, number]): Transform {
    return { type: 'CenterCrop', size: size2('size', size) };
  },
  RandomHorizontalFlip(p = 0.5): Transform {
    return { type: 'RandomHorizontalFlip', p: probability('p', p) };
  },
  Normalize(mean: readonly number[], std: readonly number[]): Transform {
    const three = (name: string, x: unknown, positive: boolean) => {
      if (!Array.isArray(x) || x.length !== 3 || !x.every((n) => typeof n === 'number' && Number.isFinite(n) && (!positive || n > 0))) {
        throw v.invalid(`3 ${positive ? 'positive ' : ''}finite numbers`, name, x);
      }
      return [x[0], x[1], x[2]] as [number, number, number];
    };
    return { type: 'Normalize', mean: three('mean', mean, false), std: three('std', std, true) };
  },
  RandomErasing(options: { p?: number; scale?: [number, number]; ratio?: [number, number]; value?: number } = {}): Transform {
    v.knownKeys('RandomErasing', v.plainObject('options', options), ['p', 'scale', 'ratio', 'value']);
    const value = options.value ?? 0;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw v.invalid('a finite number', 'value', value);
    return {
      type: 'RandomErasing',
      p: probability('p', options.p ?? 0.5),
      scale: pair('scale', options.scale ?? [0.02, 0.33], (x) => x >= 0 && x <= 1, 'in [0, 1]'),
      ratio: pair('ratio', options.ratio ?? [0.3, 3.3], (x) => x > 0, 'positive'),
      value,
    };
  },
};

/** torchvision's reference recipe (references/classification/presets.py) for ImageNet. */
export const imagenetTrainTransforms = (size = 224): Transform[] => [
  T.RandomResizedCrop(size),
  T.RandomHorizontalFlip(),
  T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
];
export const imagenetEvalTransforms = (size = 224, resize = 256): Transform[] => [
  T.Resize(resize),
  T.CenterCrop(size),
  T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
];

/** A checked pipeline: what the workers run, and the output size. */
export interface Pipeline {
  crop?: Extract<Transform, { type: 'RandomResizedCrop' }>;
  resize?: Extract<Transform, { type: 'Resize' }>;
  center?: Extract<Transform, { type: 'CenterCrop' }>;
  flip?: number;
  normalize: Extract<Transform, { type: 'Normalize' }>;
  erasing?: Extract<Transform, { type: 'RandomErasing' }>;
  /** [height, width] of every output image */
  size: [number, number];
}

/** Checks the order and combination of a transform list (the ones this package runs). */
export function toPipeline(transforms: readonly Transform[]): Pipeline {
  if (!Array.isArray(transforms) || transforms.length === 0) throw v.invalid('a non-empty array of transforms (T.RandomResizedCrop(224), ...)', 'transforms', transforms);
  const order = ['RandomResizedCrop', 'Resize', 'CenterCrop', 'RandomHorizontalFlip', 'Normalize', 'RandomErasing'];
  let last = -1;
  const p: Partial<Pipeline> = {};
  for (const [i, t] of transforms.entries()) {
    const at = typeof t === 'object' && t !== null ? order.indexOf((t as Transform).type) : -1;
    if (at < 0) throw v.invalid(`a transform made by T (${order.join(', ')})`, `transforms[${i}]`, t);
    if (at <= last) throw new InvalidArgumentError(`Expected the transforms in the order ${order.join(', ')} (each at most once) but transforms[${i}] is ${t.type} after ${order[last]}`);
    last = at;
    if (t.type === 'RandomResizedCrop') p.crop = t;
    else if (t.type === 'Resize') p.resize = t;
    else if (t.type === 'CenterCrop') p.center = t;
    else if (t.type === 'RandomHorizontalFlip') p.flip = t.p;
    else if (t.type === 'Normalize') p.normalize = t;
    else p.erasing = t;
  }
  if (p.crop && (p.resize || p.center)) throw new InvalidArgumentError('Expected RandomResizedCrop, or Resize and CenterCrop, not both (RandomResizedCrop already gives the final size)');
  if (!p.crop && !p.center) throw new InvalidArgumentError('Expected a transform that fixes the output size (RandomResizedCrop or CenterCrop): images of one batch must have one size');
  if (!p.crop && p.center!.size[0] !== p.center!.size[1]) throw new InvalidArgumentError(`Expected a square CenterCrop (torchvision's eval recipe) but received ${p.center!.size.join('x')}`);
  if (!p.normalize) throw new InvalidArgumentError('Expected Normalize(mean, std) in the transforms (it makes the float tensor)');
  return { ...p, normalize: p.normalize, size: p.crop ? p.crop.size : p.center!.size };
}

/** The draws get_params makes, from some generator: uniform(a, b) and randint(low, high) (high exclusive). */
export interface Draws {
  uniform(low: number, high: number): number;
  randint(low: number, high: number): number;
}

/**
 * torchvision's RandomResizedCrop.get_params: the crop box [top, left, height, width] of an image
 * of width x height. Ten tries of a random area and log-uniform aspect ratio; then the centre crop
 * of the whole image clamped to the ratio range.
 */
export function randomResizedCropBox(width: number, height: number, scale: readonly [number, number], ratio: readonly [number, number], draws: Draws): [number, number, number, number] {
  const area = height * width;
  // torch.log(torch.tensor(ratio)): float32.
  const logRatio = [Math.fround(Math.log(Math.fround(ratio[0]))), Math.fround(Math.log(Math.fround(ratio[1])))] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    // float32 as torch.empty(1).uniform_ draws; Python then computes in double.
    const targetArea = area * Math.fround(draws.uniform(scale[0], scale[1]));
    const aspect = Math.fround(Math.exp(Math.fround(draws.uniform(logRatio[0], logRatio[1]))));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = draws.randint(0, height - h + 1);
      const left = draws.randint(0, width - w + 1);
      return [top, left, h, w];
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}
