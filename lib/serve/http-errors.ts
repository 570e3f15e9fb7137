// One place that turns whatever a request failed with into an HTTP status and a JSON error body
// { error: { code, message } }. The code is the ResNetError's where there is one; fastify's and
// @fastify/multipart's own errors are mapped onto the same codes.
import { DisposedError, InvalidArgumentError, ResNetError } from '../errors.js';
import { ClientClosedError, PayloadTooLargeError, QueueFullError, RequestTimeoutError, ShuttingDownError, UnsupportedMediaTypeError } from './errors.js';

export interface HttpError {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** fastify / multipart error codes and the code and status we answer them with. */
const frameworkCodes: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'ERR_RESNET_PAYLOAD_TOO_LARGE' },
  FST_REQ_FILE_TOO_LARGE: { status: 413, code: 'ERR_RESNET_PAYLOAD_TOO_LARGE', message: 'A file is over the body limit' },
  FST_FILES_LIMIT: { status: 413, code: 'ERR_RESNET_PAYLOAD_TOO_LARGE', message: 'Too many files in the multipart body' },
  FST_PARTS_LIMIT: { status: 413, code: 'ERR_RESNET_PAYLOAD_TOO_LARGE', message: 'Too many parts in the multipart body' },
  FST_FIELDS_LIMIT: { status: 413, code: 'ERR_RESNET_PAYLOAD_TOO_LARGE', message: 'Too many fields in the multipart body' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'ERR_RESNET_MEDIA_TYPE',
    message: 'Expected Content-Type image/*, application/octet-stream or multipart/form-data',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'ERR_RESNET_INVALID_ARGUMENT' },
  FST_ERR_CTP_EMPTY_TYPE: { status: 415, code: 'ERR_RESNET_MEDIA_TYPE' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { status: 415, code: 'ERR_RESNET_MEDIA_TYPE' },
};

export function httpError(error: unknown): HttpError {
  const message = error instanceof Error ? error.message : String(error);
  const headers: Record<string, string> = {};
  if (error instanceof ResNetError) {
    let status = 500;
    if (error instanceof QueueFullError) {
      status = 503;
      headers['retry-after'] = String(error.retryAfterSeconds);
    } else if (error instanceof ShuttingDownError || error instanceof DisposedError) {
      status = 503;
      headers['retry-after'] = '1';
    } else if (error instanceof RequestTimeoutError) status = 504;
    else if (error instanceof ClientClosedError) status = 499;
    else if (error instanceof PayloadTooLargeError) status = 413;
    else if (error instanceof UnsupportedMediaTypeError) status = 415;
    else if (error instanceof InvalidArgumentError) status = 400;
    return { status, code: error.code, message, headers };
  }
  const code = (error as { code?: unknown } | null)?.code;
  const known = typeof code === 'string' ? frameworkCodes[code] : undefined;
  if (known) return { status: known.status, code: known.code, message: known.message ?? message, headers };
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, code: typeof code === 'string' ? code : 'ERR_RESNET_BAD_REQUEST', message, headers };
  }
  return { status: 500, code: 'ERR_RESNET_INTERNAL', message: 'Internal server error', headers };
}
