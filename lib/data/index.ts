// The data API, for lib/index.ts to re-export.
export { ImageDataset, computeMeanStd, type DatasetItem, type ImageDatasetInit } from './dataset.js';
export { BatchIterator, type Batch } from './batch-iterator.js';
export type { AugmentOptions, BatchOptions, RandomErasingOptions } from './batch-options.js';
export { CIFAR10, CIFAR100, FashionMNIST, ImageFolder, MNIST, type CifarLoadOptions, type IdxLoadOptions, type ImageFolderLoadOptions, type Split } from './datasets.js';
export { DataError } from './errors.js';
export { randomSplit } from './split.js';
export { DistributedSampler, type DistributedSamplerOptions } from './distributed-sampler.js';
export { shardLength, type ShardOptions } from './sample-order.js';
export { Mt19937, randperm } from './torch-random.js';
export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx, readIdxImages, readIdxLabels, type IdxArray } from './idx.js';
export { cifarFiles, readCifar, type CifarData, type CifarLabels, type CifarSplit, type CifarVariant } from './cifar.js';
export { imageExtensions, readImageFolder, scanImageFolder, type ImageFolderScan, type ResizeMode } from './image-folder.js';
