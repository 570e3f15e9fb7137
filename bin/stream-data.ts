// The streaming data sets of `resnet train --dataset webdataset` and `--dataset folder --stream`:
// torchvision's ImageNet recipe (RandomResizedCrop + flip for training; Resize + CenterCrop for
// validation), ImageNet's mean/std, and the preprocessing that serves the trained model the
// validation transform's way.
import { join } from 'node:path';
import fg from 'fast-glob';
import type { PreprocessOptions } from '../lib/image/preprocess-options.js';
import { StreamingDataset } from '../lib/stream/streaming-dataset.js';
import { T, type Transform } from '../lib/stream/transforms.js';
import { isFolder, UsageError } from './train-commands.js';

const mean = [0.485, 0.456, 0.406] as const;
const std = [0.229, 0.224, 0.225] as const;

export interface StreamingData {
  train: StreamingDataset;
  val?: StreamingDataset;
  /** What predict and serve use: the validation transform, as preprocess() options. */
  preprocessing: PreprocessOptions;
}


async function shards(root: string, prefix: 'train' | 'val'): Promise<string[]> {
  return (await fg(`${prefix}*.tar`, { cwd: root, onlyFiles: true })).sort().map((f) => join(root, f));
}

/** `dataset` is 'folder' (DIR/train, DIR/val) or 'webdataset' (DIR/train*.tar, DIR/val*.tar). */
export async function streamingData(dataset: string, root: string | undefined, size: number, options: { erasing?: number; skipBad: boolean; classes?: readonly string[] }): Promise<StreamingData> {
  if (!root) throw new UsageError(`--dataset ${dataset} needs --root DIR`);
  const resize = Math.round((size * 256) / 224);
  const train: Transform[] = [T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.Normalize(mean, std), ...(options.erasing ? [T.RandomErasing({ p: options.erasing })] : [])];
  const evaluate: Transform[] = [T.Resize(resize), T.CenterCrop(size), T.Normalize(mean, std)];
  const common = { onBadSample: options.skipBad ? ('skip' as const) : ('error' as const) };
  let data: StreamingData['train'];
  let val: StreamingData['val'];
  if (dataset === 'webdataset') {
    const trainShards = await shards(root, 'train');
    if (trainShards.length === 0) throw new UsageError(`no training shards (train*.tar) in '${root}'`);
    const classes = options.classes ? { classes: options.classes } : {};
    data = await StreamingDataset.fromWebDataset(trainShards, { transforms: train, ...common, ...classes });
    const valShards = await shards(root, 'val');
    if (valShards.length > 0) val = await StreamingDataset.fromWebDataset(valShards, { transforms: evaluate, ...common, classes: data.classes });
  } else {
    const hasSplits = await isFolder(join(root, 'train'));
    data = await StreamingDataset.fromFolder(hasSplits ? join(root, 'train') : root, { transforms: train, ...common });
    if (await isFolder(join(root, 'val'))) val = await StreamingDataset.fromFolder(join(root, 'val'), { transforms: evaluate, ...common });
  }
  if (val && val.classes.join('\n') !== data.classes.join('\n')) {
    throw new UsageError(`the validation set's classes (${val.classes.join(', ')}) are not the training set's (${data.classes.join(', ')})`);
  }
  return { train: data, ...(val && { val }), preprocessing: { resize, crop: size, mean, std } };
}
