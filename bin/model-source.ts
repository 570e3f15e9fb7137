// The model a command's --weights names: a file model.save() / `resnet train --out` wrote (it
// brings its architecture, classes and preprocessing), torchvision's weights by name with --arch,
// or a bare weights file (e.g. from PyTorch) with --arch, its head's size giving the classes.
import { architectureNames, type ArchitectureName } from '../lib/architectures.js';
import { createModel, isRegistryName, modelFromDescription } from '../lib/builders.js';
import type { ResNet } from '../lib/model.js';
import { downloadWeights } from '../lib/weights/download.js';
import { readWeightsFile } from '../lib/weights/files.js';
import { progressReporter } from '../lib/weights/progress.js';
import { readModelMetadata } from '../lib/weights/model-metadata.js';
import { UsageError } from './train-commands.js';


export function architecture(arch: string | undefined, why: string): ArchitectureName {
  if (arch === undefined) throw new UsageError(`${why} needs --arch (one of ${architectureNames.join(', ')})`);
  if (!(architectureNames as string[]).includes(arch)) throw new UsageError(`unknown architecture '${arch}'`);
  return arch as ArchitectureName;
}

/** A URL downloaded once into torch.hub's cache (with a progress bar on a terminal); a path as is. */
export async function localWeights(weights: string, progress: boolean): Promise<string> {
  if (!/^https?:\/\//i.test(weights)) return weights;
  const reporter = progressReporter(progress, weights.slice(weights.lastIndexOf('/') + 1));
  try {
    return await downloadWeights(weights, reporter.onProgress ? { progress: reporter.onProgress } : {});
  } finally {
    reporter.done();
  }
}

/** `numClasses` applies to a bare weights file when it has no head to read it from. */
export async function modelFromWeights(weights: string, arch: string | undefined, options: { numClasses?: number; progress?: boolean } = {}): Promise<ResNet> {
  if (isRegistryName(weights)) return createModel(architecture(arch, `--weights ${weights}`), { weights, progress: options.progress ?? true });
  const path = await localWeights(weights, options.progress ?? true);
  // The file is read once: its description, or its tensors' shapes, say what to build.
  const file = await readWeightsFile(path);
  const description = await readModelMetadata(path, file.metadata);
  if (description !== null) return modelFromDescription(description, file.tensors, path);
  const head = file.tensors['fc.weight'];
  const stem = file.tensors['conv1.weight'];
  const model = await createModel(architecture(arch, `'${weights}' has no model description, so it`), {
    ...(head !== undefined ? { numClasses: head.shape[0]! } : options.numClasses !== undefined && { numClasses: options.numClasses }),
    ...(stem !== undefined && { inChannels: stem.shape[1]! }),
  });
  try {
    await model.loadStateDict(file.tensors);
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
