// Errors of the HTTP server and its batcher. Each is a ResNetError with a stable code, and the
// server maps each class onto one HTTP status (lib/serve/http-errors.ts).
import { InvalidArgumentError, ResNetError } from '../errors.js';

/** The batcher's queue holds `maxQueue` images already: try again later (HTTP 503 + Retry-After). */
export class QueueFullError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_QUEUE_FULL';
  /** A guess at when the queue will have room, in whole seconds (at least 1). */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/** The request was not answered within `timeoutMs` (HTTP 504). */
export class RequestTimeoutError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_TIMEOUT';
}

/** The server or batcher is shutting down and takes no new work (HTTP 503). */
export class ShuttingDownError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_SHUTTING_DOWN';
}

/** The body, a file in it, or the number of images is over a limit (HTTP 413). */
export class PayloadTooLargeError extends InvalidArgumentError {
  override readonly code: string = 'ERR_RESNET_PAYLOAD_TOO_LARGE';
}

/** The request's Content-Type is not an image, application/octet-stream or multipart/form-data (HTTP 415). */
export class UnsupportedMediaTypeError extends InvalidArgumentError {
  override readonly code: string = 'ERR_RESNET_MEDIA_TYPE';
}

/** The client went away before its answer was ready (logged as 499, never seen by anyone). */
export class ClientClosedError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_CLIENT_CLOSED';
}
