// The ResNetError family. Every error this package throws or rejects with is one of these, with
// a stable `code` that scripts can switch on. Native errors arrive as plain Errors carrying one of
// the same codes (native/core/types.h) and are turned into these classes by fromNative().

export class ResNetError extends Error {
  readonly code: string = 'ERR_RESNET';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An option or an input is wrong: says which, what was expected and what came. */
export class InvalidArgumentError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_INVALID_ARGUMENT';
}

/** A tensor has the wrong rank, channel count or number of elements. */
export class ShapeError extends InvalidArgumentError {
  override readonly code: string = 'ERR_RESNET_SHAPE';
}

/** A state dict does not fit the model: missing / unexpected keys, size or dtype mismatch. */
export class WeightsError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_WEIGHTS';
}

/** A weights file asked for something outside the unpickler's allowlist. */
export class UnsafeWeightsError extends WeightsError {
  override readonly code: string = 'ERR_RESNET_UNSAFE_WEIGHTS';
}

export class DownloadError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_DOWNLOAD';
}

export class HashMismatchError extends DownloadError {
  override readonly code: string = 'ERR_RESNET_HASH_MISMATCH';
}

/** A device that this build or this machine cannot provide (e.g. CUDA from a CPU-only LibTorch). */
export class DeviceError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_DEVICE';
}

/** The model was disposed: queued calls and later calls reject with this. */
export class DisposedError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_DISPOSED';
}

/** A long operation (fit) stopped because its AbortSignal fired; `cause` is the signal's reason. */
export class AbortedError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_ABORTED';
}

/**
 * Data-parallel training failed: a rank was lost (killed, crashed, out of memory), a collective
 * timed out, or the job is misconfigured (a rank missing or twice, the master unreachable, the
 * port taken, models that differ). `lostRank` is the rank that was lost, when one was.
 */
export class DistributedError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_DISTRIBUTED';
  readonly lostRank: number | undefined;
  constructor(message: string, options?: ErrorOptions & { lostRank?: number }) {
    super(message, options);
    // The addon says "lost rank N" (native/core/distributed.cpp, ProcessGroup::fail).
    const match = /\blost rank (\d+)/.exec(message);
    this.lostRank = options?.lostRank ?? (match ? Number(match[1]) : undefined);
  }
}

/** LibTorch itself failed (its message is kept as it was). */
export class NativeError extends ResNetError {
  override readonly code: string = 'ERR_RESNET_NATIVE';
}

/** The error class of each code the addon throws (native/core/types.h, `codes`): one entry each. */
export const nativeErrorClasses: Readonly<Record<string, new (message: string) => ResNetError>> = {
  ERR_RESNET_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_RESNET_SHAPE: ShapeError,
  ERR_RESNET_WEIGHTS: WeightsError,
  ERR_RESNET_DEVICE: DeviceError,
  ERR_RESNET_DISPOSED: DisposedError,
  ERR_RESNET_DISTRIBUTED: DistributedError,
  ERR_RESNET_NATIVE: NativeError,
};

/**
 * Turns what the addon threw or rejected with into a ResNetError. `trace` is an Error created when
 * the user's call was made: its stack replaces the (empty) native one, so the error points at the
 * caller's line rather than at the event loop.
 */
export function fromNative(error: unknown, trace?: Error): ResNetError {
  if (error instanceof ResNetError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const ErrorClass = (typeof code === 'string' && Object.hasOwn(nativeErrorClasses, code) && nativeErrorClasses[code]) || NativeError;
  const typed = new ErrorClass(message);
  if (trace?.stack) {
    const frames = trace.stack.split('\n').slice(1).join('\n');
    typed.stack = `${typed.name}: ${message}\n${frames}`;
  }
  return typed;
}

/** Awaits a native promise and rejects with a typed error whose stack is the caller's. */
export async function settle<T>(call: () => Promise<T>, trace: Error): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNative(error, trace);
  }
}
