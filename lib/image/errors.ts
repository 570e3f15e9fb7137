// The error for an image that cannot be read. An InvalidArgumentError, since the image is an
// argument: callers that already handle bad inputs handle this too, and `code` tells it apart.
import { InvalidArgumentError } from '../errors.js';

/**
 * An input that is not a readable image: a missing file, empty or garbage bytes, truncated data, a
 * format that sharp cannot decode. The message names the input and gives sharp's own words:
 *   Cannot decode image 'photos/cat.jpg': Input file is missing: photos/cat.jpg
 *   Cannot decode image from a buffer of 34 bytes: Input buffer contains unsupported image format
 * preprocessBatch adds the position: `Cannot decode image 'b.png' (inputs[1]): ...`.
 */
export class ImageError extends InvalidArgumentError {
  override readonly code: string = 'ERR_RESNET_IMAGE';
  /** The file path, or `buffer of N bytes`. */
  readonly input: string;
  /** The position in preprocessBatch's array, when the input came from one. */
  readonly index: number | undefined;
  /** Why, in the decoder's words (the message without the input's name). */
  readonly reason: string;

  constructor(input: string | Uint8Array, reason: string, options?: ErrorOptions & { index?: number }) {
    const subject = typeof input === 'string' ? `'${input}'` : `from a buffer of ${input.byteLength} bytes`;
    const where = options?.index === undefined ? '' : ` (inputs[${options.index}])`;
    super(`Cannot decode image ${subject}${where}: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.input = typeof input === 'string' ? input : `buffer of ${input.byteLength} bytes`;
    this.index = options?.index;
    this.reason = reason;
  }
}
