// Streaming data: data sets that stay on disk, decoded per batch by worker threads.
export { StreamingDataset, type StreamBatchOptions, type StreamingOptions, type StreamStats } from './streaming-dataset.js';
export { shardLength, type ShardOptions } from '../data/sample-order.js';
export { T, imagenetEvalTransforms, imagenetTrainTransforms, randomResizedCropBox, toPipeline, type Draws, type Pipeline, type Transform } from './transforms.js';
