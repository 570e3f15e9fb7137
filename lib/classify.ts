// classify(): images in, top-k labels out, preprocessed as the model's weights were trained
// (torchvision's ImageClassification recipe of the weights entry, or ImageNet's defaults).
import { preprocessBatch, type ImageInput, type PreprocessOptions } from './image/preprocess.js';
import type { Tensor } from './tensor.js';
import * as v from './validate.js';
import { imagenetCategories } from './weights/registry.js';

export interface ClassifyOptions {
  /** How many classes per image, best first. Default 5. */
  topk?: number;
  /** Class names by index. Default: the model's classes (model.classes), else the index as text. */
  labels?: readonly string[];
  /** Preprocessing. Default: the model's (model.preprocessing), else resize 256, crop 224, ImageNet mean/std. */
  preprocess?: PreprocessOptions;
}

export interface Prediction {
  label: string;
  index: number;
  /** Softmax probability. */
  score: number;
}

/**
 * The k largest entries' indices, largest first, ties in index order (a stable sort's order). A
 * selection, not a sort of all classes: the server does this for every image on its event loop.
 */
function topIndices(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const x = row[i]!;
    if (best.length === k && !(x > row[best[k - 1]!]!)) continue;
    let at = best.length;
    while (at > 0 && x > row[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Softmax of each row, then the `topk` best classes of each, with labels. */
export function topPredictions(logits: Tensor<Float32Array>, topk: number, labels: readonly string[] | null): Prediction[][] {
  const [rows, classes] = logits.shape as [number, number];
  const out: Prediction[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = logits.data.subarray(r * classes, (r + 1) * classes);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    const order = topIndices(row, Math.min(topk, classes));
    out.push(order.map((index) => ({ label: labels?.[index] ?? String(index), index, score: Math.exp(row[index]! - max) / sum })));
  }
  return out;
}

/** The model's own classes and preprocessing (see ResNet.classes / .preprocessing) unless overridden. */
export function resolveClassify(model: { classes: readonly string[] | null; preprocessing: PreprocessOptions | null; config: { numClasses: number } }, options: ClassifyOptions) {
  v.knownKeys('classify', v.plainObject('options', options), ['topk', 'labels', 'preprocess']);
  const topk = v.positiveInteger('topk', options.topk ?? 5);
  const numClasses = model.config.numClasses;
  const labels = options.labels ?? model.classes ?? (numClasses === 1000 ? imagenetCategories() : null);
  if (labels !== null && (!Array.isArray(labels) || labels.length !== numClasses)) {
    throw v.invalid(`an array of ${numClasses} labels`, 'labels', labels);
  }
  return { topk, labels, preprocess: options.preprocess ?? model.preprocessing ?? {} };
}

export async function imagesToBatch(images: readonly ImageInput[] | ImageInput, preprocess: PreprocessOptions): Promise<{ batch: Tensor<Float32Array>; single: boolean }> {
  const single = !Array.isArray(images);
  const list = (single ? [images] : images) as readonly ImageInput[];
  if (list.length === 0) throw v.invalid('at least one image', 'images', images);
  return { batch: await preprocessBatch(list, preprocess), single };
}
