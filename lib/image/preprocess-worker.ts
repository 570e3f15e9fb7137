// A preprocess() worker of PreprocessPool: the decode runs in sharp either way, and here the
// per-pixel JavaScript (Pillow-exact enlargement, the float conversion) runs too, off the thread
// whose event loop serves requests.
import { parentPort } from 'node:worker_threads';
import { ImageError } from './errors.js';
import { preprocess } from './preprocess.js';
import type { PreprocessOptions } from './preprocess-options.js';

export interface PreprocessRequest {
  id: number;
  image: Uint8Array;
  options: PreprocessOptions;
}

export type PreprocessReply =
  | { id: number; data: Float32Array; shape: number[] }
  | { id: number; error: { image: boolean; reason: string; name: string; message: string } };

parentPort!.on('message', async ({ id, image, options }: PreprocessRequest) => {
  try {
    const tensor = await preprocess(image, options);
    const data = tensor.data as Float32Array;
    parentPort!.postMessage({ id, data, shape: [...tensor.shape] } satisfies PreprocessReply, [data.buffer as ArrayBuffer]);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    const reason = error instanceof ImageError ? error.reason : e.message;
    parentPort!.postMessage({ id, error: { image: error instanceof ImageError, reason, name: e.name, message: e.message } } satisfies PreprocessReply);
  }
});
