// The server's Prometheus metrics, in a registry of its own (never prom-client's global one), so
// several servers in one process do not collide.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchInfo } from './batcher.js';

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  latency: Histogram<'route'>;
  batchSize: Histogram;
  batchDuration: Histogram;
  images: Counter<'route'>;
  observeBatch(info: BatchInfo): void;
}

export function createMetrics(maxBatch: number, state: { queued(): number; running(): number; replicas(): number; busy(): number }): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'resnet_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'resnet_http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const sizes: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) sizes.push(b);
  sizes.push(maxBatch);
  const batchSize = new Histogram({
    name: 'resnet_batch_size',
    help: 'Images per forward',
    buckets: sizes,
    registers: [registry],
  });
  const batchDuration = new Histogram({
    name: 'resnet_batch_duration_seconds',
    help: 'Time one batched forward took',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const images = new Counter({
    name: 'resnet_images_total',
    help: 'Images run through a model, by route',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'resnet_queue_depth',
    help: 'Images waiting in the batch queue',
    registers: [registry],
    collect() {
      this.set(state.queued());
    },
  });
  new Gauge({
    name: 'resnet_running_images',
    help: 'Images in batches running now',
    registers: [registry],
    collect() {
      this.set(state.running());
    },
  });
  new Gauge({
    name: 'resnet_replicas',
    help: 'Model replicas',
    registers: [registry],
    collect() {
      this.set(state.replicas());
    },
  });
  new Gauge({
    name: 'resnet_busy_replicas',
    help: 'Model replicas running a batch now',
    registers: [registry],
    collect() {
      this.set(state.busy());
    },
  });
  return {
    registry,
    requests,
    latency,
    batchSize,
    batchDuration,
    images,
    observeBatch(info) {
      batchSize.observe(info.size);
      batchDuration.observe(info.runMs / 1000);
    },
  };
}
