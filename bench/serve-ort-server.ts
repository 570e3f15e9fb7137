// The comparison server of bench/serve.ts: the same job as `resnet serve`'s POST /v1/classify
// (decode and preprocess with lib/image, run the network, softmax and top-5 as JSON), with
// onnxruntime-node running an ONNX export of the same weights: one session.run() per request, no
// batching, no queue. bench/serve.ts starts it in a child process (--role ort-server).
import Fastify, { type FastifyInstance } from 'fastify';
import * as ort from 'onnxruntime-node';
import { preprocess } from '../lib/image/preprocess.ts';
import { predictions } from '../lib/serve/server.ts';

export interface OrtServer {
  app: FastifyInstance;
  /** Requests whose handler is still running (an abandoned request still runs session.run()). */
  inflight(): number;
  version: string;
  close(): Promise<void>;
}

export async function startOrtServer(modelPath: string, threads: number): Promise<OrtServer> {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
  app.addContentTypeParser(/^image\/.+/i, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.get('/healthz', async () => ({ status: 'ok' }));
  let inflight = 0;
  app.post('/v1/classify', async (request) => {
    inflight++;
    try {
      const x = await preprocess(request.body as Buffer, { resize: 256, crop: 224 });
      // onnxruntime-node 1.30: run() is a synchronous native call deferred with setImmediate, so
      // the inference itself occupies the event loop.
      const out = await session.run({ input: new ort.Tensor('float32', x.data, [...x.shape]) });
      return { results: [{ predictions: predictions(out.logits!.data as Float32Array, 5, null) }] };
    } finally {
      inflight--;
    }
  });
  return {
    app,
    inflight: () => inflight,
    version: ort.env.versions.common,
    close: async () => {
      await app.close();
      await session.release();
    },
  };
}
