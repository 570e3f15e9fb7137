// PyTorch's side of the pickle in a torch.save archive: the allowlisted globals (what each one
// builds, in TypeScript), persistent ids for storages, and the pickle writePth emits.
import type { DType } from '../tensor.js';
import { isTuple, PickleObject, type PickleFunction, type PickleValue } from './pickle.js';

export const elementSize: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const storageNames: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** A storage class such as torch.FloatStorage: only ever an argument in a persistent id. */
export class StorageType extends PickleObject {
  constructor(readonly dtype: DType) {
    super();
  }
}

/** A storage in the archive's data/ folder, not read yet. */
export class StorageRef extends PickleObject {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
  ) {
    super();
  }
}

/** A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage, in elements. */
export class TensorRef extends PickleObject {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
}

/** Expanded views (stride 0) may be larger than their storage; materialising one may cost at
 * most this much, so a few bytes of pickle cannot ask for gigabytes. */
export const MAX_EXPANDED_BYTES = 64 << 20;

type Fail = (message: string) => never;

function isCount(value: PickleValue): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function counts(value: PickleValue, what: string, fail: Fail): number[] {
  if (!isTuple(value) || !value.every(isCount)) fail(`${what} must be a tuple of non-negative integers`);
  return [...(value as number[])];
}

function rebuildTensor(args: readonly PickleValue[], fail: Fail): TensorRef {
  if (args.length < 6 || args.length > 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof StorageRef)) return fail('_rebuild_tensor_v2 needs a storage from a persistent id');
  if (!isCount(offset!)) return fail('the storage offset must be a non-negative integer');
  if (typeof requiresGrad !== 'boolean') fail('requires_grad must be a bool');
  const shape = counts(size!, 'the size', fail);
  const strides = counts(stride!, 'the stride', fail);
  if (strides.length !== shape.length) fail(`size has ${shape.length} dimensions but stride has ${strides.length}`);

  // Every element the view can reach must lie inside the storage. The products stay exact: a
  // product beyond 2^53 also compares as beyond the storage, and fails.
  const numel = shape.reduce((n, d) => n * d, 1);
  if (numel > 0) {
    let last = offset;
    shape.forEach((d, i) => (last += (d - 1) * strides[i]!));
    if (last >= storage.numel) {
      const layout = `offset ${offset}, size [${shape.join(', ')}], stride [${strides.join(', ')}]`;
      fail(`a view (${layout}) reaching element ${last} of a storage of ${storage.numel}`);
    }
  } else if (offset > storage.numel) {
    fail(`storage offset ${offset} is past the storage's ${storage.numel} elements`);
  }
  if (numel > storage.numel && numel * elementSize[storage.dtype] > MAX_EXPANDED_BYTES) {
    fail(`an expanded view of ${numel} elements from a storage of ${storage.numel} (more than ${MAX_EXPANDED_BYTES} bytes)`);
  }
  return new TensorRef(storage, offset, shape, strides);
}

function func(qualifiedName: string, call: PickleFunction['call']): [string, PickleFunction] {
  return [qualifiedName, { qualifiedName, call }];
}

/** A Parameter is its tensor here: gradients, hooks and extra state do not matter for weights. */
function rebuildParameter(name: string, arity: number): PickleFunction['call'] {
  return (args, fail) => {
    if (args.length !== arity) fail(`${name} takes ${arity} arguments, got ${args.length}`);
    if (!(args[0] instanceof TensorRef)) fail(`${name} needs a tensor as its data`);
    return args[0]!;
  };
}

/** The only globals a weights pickle may name. Everything else is refused. */
export const torchGlobals: ReadonlyMap<string, PickleValue> = new Map<string, PickleValue>([
  func('collections.OrderedDict', (args, fail) => {
    if (args.length !== 0) fail('OrderedDict is only built empty (items follow with SETITEMS)');
    return new Map();
  }),
  func('torch._utils._rebuild_tensor_v2', rebuildTensor),
  func('torch._utils._rebuild_parameter', rebuildParameter('_rebuild_parameter', 3)),
  func('torch._utils._rebuild_parameter_with_state', rebuildParameter('_rebuild_parameter_with_state', 4)),
  func('torch.Size', (args, fail) => {
    if (args.length !== 1) fail(`torch.Size takes 1 argument, got ${args.length}`);
    return Object.freeze(counts(args[0]!, 'torch.Size', fail));
  }),
  ...(Object.entries(storageNames) as [DType, string][]).map(
    ([dtype, name]): [string, PickleValue] => [`torch.${name}`, new StorageType(dtype)],
  ),
]);

/** Persistent ids: ('storage', storage type, key, location, numel). The same key always gives the
 * same StorageRef, so views of one storage share it (as torch.load does, the first id wins). */
export function storageLoader(): (pid: PickleValue, fail: Fail) => PickleValue {
  const seen = new Map<string, StorageRef>();
  return (pid, fail) => {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      return fail("a persistent id must be ('storage', type, key, location, numel)");
    }
    const [, type, key, location, numel] = pid;
    if (!(type instanceof StorageType)) return fail('the persistent id names no storage type');
    if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) return fail('a storage key must be a plain name');
    if (typeof location !== 'string') fail('a storage location must be a string');
    if (!isCount(numel!)) return fail('a storage size must be a non-negative integer');
    const known = seen.get(key);
    if (known === undefined) {
      const storage = new StorageRef(key, type.dtype, numel);
      seen.set(key, storage);
      return storage;
    }
    if (known.dtype !== type.dtype) fail(`storage '${key}' is read as ${known.dtype} and as ${type.dtype}`);
    return known;
  };
}

// ---------------------------------------------------------------------------------------------
// Writing: the protocol-2 pickle torch.save emits for an OrderedDict of tensors, byte for byte in
// structure (torch 1.13's weights_only unpickler accepts only a few opcodes, e.g. not MEMOIZE).

export interface TensorRecord {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The storage's key in data/. */
  readonly key: string;
}

class PickleWriter {
  readonly #parts: Uint8Array[] = [];
  readonly #memo = new Map<string, number>();

  op(...codes: number[]): void {
    this.#parts.push(Uint8Array.from(codes));
  }

  /** A non-negative integer (sizes, strides, offsets), in Python's smallest encoding. */
  int(value: number): void {
    if (value < 0x100) this.op(0x4b, value); // BININT1
    else if (value < 0x10000) this.op(0x4d, value & 0xff, value >> 8); // BININT2
    else if (value < 0x80000000) {
      const bytes = new Uint8Array(5);
      bytes[0] = 0x4a; // BININT
      new DataView(bytes.buffer).setInt32(1, value, true);
      this.#parts.push(bytes);
    } else {
      // LONG1: little-endian two's complement, with a zero byte added if the top bit is set.
      const digits: number[] = [];
      for (let rest = BigInt(value); rest !== 0n; rest >>= 8n) digits.push(Number(rest & 0xffn));
      if (digits[digits.length - 1]! & 0x80) digits.push(0);
      this.op(0x8a, digits.length, ...digits);
    }
  }

  string(value: string): void {
    const text = new TextEncoder().encode(value);
    const header = new Uint8Array(5);
    header[0] = 0x58; // BINUNICODE
    new DataView(header.buffer).setUint32(1, text.length, true);
    this.#parts.push(header, text);
  }

  /** GLOBAL the first time, BINGET of its memo slot afterwards. */
  global(module: string, name: string): void {
    const qualified = `${module}\n${name}\n`;
    const slot = this.#memo.get(qualified);
    if (slot !== undefined) {
      this.#get(slot);
      return;
    }
    this.op(0x63);
    this.#parts.push(new TextEncoder().encode(qualified));
    const index = this.#memo.size;
    this.#memo.set(qualified, index);
    if (index < 0x100) this.op(0x71, index); // BINPUT
    else this.op(0x72, index & 0xff, (index >> 8) & 0xff, (index >> 16) & 0xff, index >>> 24); // LONG_BINPUT
  }

  #get(index: number): void {
    if (index < 0x100) this.op(0x68, index); // BINGET
    else this.op(0x6a, index & 0xff, (index >> 8) & 0xff, (index >> 16) & 0xff, index >>> 24); // LONG_BINGET
  }

  tuple(values: readonly number[]): void {
    if (values.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (values.length > 3) this.op(0x28); // MARK
    for (const value of values) this.int(value);
    this.op(values.length > 3 ? 0x74 : 0x84 + values.length); // TUPLE, or TUPLE1..3
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.#parts);
  }
}

/** Row-major strides as PyTorch computes them (size-0 dimensions count as 1). */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= Math.max(shape[i]!, 1);
  }
  return strides;
}

/** The data.pkl of an OrderedDict of tensors, each with its own storage. */
export function encodeStateDict(records: readonly TensorRecord[]): Uint8Array {
  const w = new PickleWriter();
  w.op(0x80, 2); // PROTO 2
  w.global('collections', 'OrderedDict');
  w.op(0x29, 0x52); // EMPTY_TUPLE REDUCE: OrderedDict()
  if (records.length > 0) w.op(0x28); // MARK
  for (const record of records) {
    const numel = record.shape.reduce((n, d) => n * d, 1);
    w.string(record.name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.op(0x28); // MARK: the arguments
    w.op(0x28); // MARK: the persistent id
    w.string('storage');
    w.global('torch', storageNames[record.dtype]);
    w.string(record.key);
    w.string('cpu');
    w.int(numel);
    w.op(0x74, 0x51); // TUPLE BINPERSID
    w.int(0); // storage offset
    w.tuple(record.shape);
    w.tuple(contiguousStrides(record.shape));
    w.op(0x89); // NEWFALSE: requires_grad
    w.global('collections', 'OrderedDict');
    w.op(0x29, 0x52); // OrderedDict(): backward hooks
    w.op(0x74, 0x52); // TUPLE REDUCE
  }
  if (records.length > 0) w.op(0x75); // SETITEMS
  w.op(0x2e); // STOP
  return w.bytes();
}
