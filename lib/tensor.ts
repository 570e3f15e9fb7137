// A dense, contiguous, row-major tensor on the host: a TypedArray plus a shape and a dtype.
import { InvalidArgumentError, ShapeError } from './errors.js';
import { describe, invalid, ownEntry } from './validate.js';

export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** The TypedArray class that holds each dtype (float16 / bfloat16 as raw 16-bit words). */
export const arrayTypeOf = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as const;

export const dtypes = Object.keys(arrayTypeOf) as DType[];

type ArrayType = (typeof arrayTypeOf)[DType];

/** The dtype a TypedArray implies when none is given. Uint8Array means uint8 (pass 'bool' for
 * booleans); Uint16Array has no default: pass 'float16' or 'bfloat16'. */
function inferDType(data: TensorData): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export interface TensorLike<T extends TensorData = TensorData> {
  data: T;
  shape: readonly number[];
  dtype?: DType;
}

export class Tensor<T extends TensorData = TensorData> {
  readonly data: T;
  readonly shape: readonly number[];
  readonly dtype: DType;

  constructor(data: T, shape: readonly number[], dtype?: DType) {
    if (!ArrayBuffer.isView(data) || data instanceof DataView) {
      throw invalid('a TypedArray', 'tensor data', data);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid('an array of non-negative integers', 'tensor shape', shape);
    }
    const resolved = dtype ?? inferDType(data);
    if (resolved === undefined) {
      throw new InvalidArgumentError(
        `Expected a dtype for tensor data of type ${data.constructor.name} ('float16' or 'bfloat16') but received none`,
      );
    }
    const Expected: ArrayType | undefined = ownEntry(arrayTypeOf, resolved);
    if (Expected === undefined) throw invalid(`one of ${dtypes.join(', ')}`, 'tensor dtype', dtype);
    if (!(data instanceof Expected)) {
      throw new InvalidArgumentError(
        `Expected ${Expected.name} for tensor data of dtype ${resolved} but received ${describe(data)}`,
      );
    }
    const numel = numelOf(shape);
    if (numel !== data.length) {
      throw new ShapeError(
        `Expected ${numel} elements for tensor data of shape ${formatShape(shape)} but received ${data.length}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = resolved;
  }

  /** A Tensor as is, or one built from `{ data, shape, dtype? }`. */
  static from<T extends TensorData>(value: Tensor<T> | TensorLike<T>): Tensor<T> {
    if (value instanceof Tensor) return value;
    if (typeof value !== 'object' || value === null) throw invalid('a Tensor or { data, shape }', 'tensor', value);
    return new Tensor(value.data, value.shape, value.dtype);
  }

  get numel(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Wraps bytes from the addon without copying them. */
  static fromBuffer(buffer: ArrayBuffer, shape: readonly number[], dtype: DType): Tensor {
    const ArrayClass = arrayTypeOf[dtype];
    return new Tensor(new ArrayClass(buffer), shape, dtype);
  }
}

/**
 * The bytes handed to the addon: N-API cannot read typed arrays over a SharedArrayBuffer (the
 * call fails with a bare "Invalid argument"), so those are copied into a plain buffer first.
 */
export function nativeView<T extends ArrayBufferView>(data: T): T {
  if (!(data.buffer instanceof SharedArrayBuffer)) return data;
  const Type = data.constructor as new (source: T) => T;
  return new Type(data);
}
