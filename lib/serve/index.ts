// The serving API, published as the subpath 'libtorch-resnet/serve' so that importing the main
// entry does not load fastify and prom-client.
export { createServer, predictions, type Preprocessor, type ResNetServer, type ServerOptions } from './server.js';
export { Batcher, type BatcherOptions, type BatchInfo, type BatchTask, type BatchTensor, type ImageOutput, type OutputSlice, type SubmitOptions } from './batcher.js';
export { ClientClosedError, PayloadTooLargeError, QueueFullError, RequestTimeoutError, ShuttingDownError, UnsupportedMediaTypeError } from './errors.js';
