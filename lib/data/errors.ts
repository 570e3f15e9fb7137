// DataError: a data set file that cannot be used as it is (malformed, truncated, missing). Bad
// options stay InvalidArgumentError (lib/errors.ts); this class is for what is on disk.
import { ResNetError } from '../errors.js';

export interface DataErrorDetails {
  /** The file at fault, as it was opened. */
  file?: string;
  /** Where in the file (in the decompressed data for a .gz file) the problem starts. */
  offset?: number;
  cause?: unknown;
}

export class DataError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_DATA';
  readonly file: string | undefined;
  readonly offset: number | undefined;

  constructor(message: string, details: DataErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = details.file;
    this.offset = details.offset;
  }
}

/** "Malformed data file '<file>' at byte offset <offset>: <detail>": one shape for every format. */
export function malformed(file: string, offset: number, detail: string): DataError {
  return new DataError(`Malformed data file '${file}' at byte offset ${offset}: ${detail}`, { file, offset });
}
