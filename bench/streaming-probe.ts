// Where the streaming pipeline's time goes: images/s of one configuration, how busy the main thread
// was (event-loop utilisation), and what one batch copy into fresh memory costs. A folder made by
// bench/streaming.ts; add --cpu-prof for profiles of the main thread and each worker.
//   node --import=tsx bench/streaming-probe.ts /tmp/resnet-stream-bench/5000 [auto|sharp] [workers] [perWorker]
import { performance } from 'node:perf_hooks';
import { StreamingDataset, T } from '../lib/stream/index.ts';

const root = process.argv[2]!;
const decoder = (process.argv[3] ?? 'auto') as 'auto' | 'sharp';
const workers = Number(process.argv[4] ?? 2);
const perWorker = Number(process.argv[5] ?? 4);
const transforms = [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])];
const data = await StreamingDataset.fromFolder(root, { transforms, decoder, workers, perWorker });
const it = data.batches({ batchSize: 64, shuffle: true, seed: 0, epoch: 0, dropLast: true });
await it.next();
const elu0 = performance.eventLoopUtilization();
const t0 = performance.now();
let n = 0;
for (let k = 0; k < 40; k++) n += (await it.next()).value!.images.shape[0]!;
const s = (performance.now() - t0) / 1000;
const elu = performance.eventLoopUtilization(elu0);
console.log(JSON.stringify({ decoder, workers, perWorker, imagesPerSecond: Math.round(n / s), mainUtilisation: +elu.utilization.toFixed(3), cpu: process.cpuUsage() }));
await it.return?.();
await data.close();
// The copy per batch alone.
const shared = new Float32Array(new SharedArrayBuffer(64 * 3 * 224 * 224 * 4));
const c0 = performance.now();
for (let k = 0; k < 20; k++) { const x = new Float32Array(shared.length); x.set(shared); }
console.log(JSON.stringify({ copyMsPerBatch: +((performance.now() - c0) / 20).toFixed(2) }));
