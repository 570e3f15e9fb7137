// A restricted unpickler: a small stack machine over the opcodes torch.save emits. It never
// imports or runs anything. GLOBAL resolves names through an allowlist given by the caller (an
// unknown name is an UnsafeWeightsError), and REDUCE only applies the functions that allowlist
// maps to, which are TypeScript written for the purpose.
//
// Malformed input ends in a WeightsError that names the byte offset. Every length is checked
// against the bytes that are left before anything is sliced, each opcode pushes at most one value
// (so the stacks cannot outgrow the input) and the machine is a loop, not a recursion.
import { UnsafeWeightsError, WeightsError } from '../errors.js';

/** Values that allowlisted globals produce (storage types, storages, tensors). */
export abstract class PickleObject {}

/** A callable global: what REDUCE may apply. `fail` throws a WeightsError naming the offset. */
export interface PickleFunction {
  readonly qualifiedName: string;
  call(args: readonly PickleValue[], fail: (message: string) => never): PickleValue;
}

/**
 * Python values as plain JS: None is null, int a number (a bigint beyond 2^53), float a number,
 * str a string, bytes a Uint8Array, list an array, tuple a frozen array, dict a Map.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | readonly PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleFunction
  | PickleObject;

export interface UnpickleOptions {
  /** Where the pickle came from, for messages ("archive/data.pkl in 'x.pth'"). */
  readonly label: string;
  /** The only globals the pickle may name, by "module.name". */
  readonly globals: ReadonlyMap<string, PickleValue>;
  /** BINPERSID: turns a persistent id into a value (torch: storage references). */
  readonly persistentLoad: (pid: PickleValue, fail: (message: string) => never) => PickleValue;
}

export function isTuple(value: PickleValue): value is readonly PickleValue[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

export function isFunction(value: PickleValue): value is PickleFunction {
  return typeof value === 'object' && value !== null && typeof (value as PickleFunction).call === 'function';
}

const Op = {
  MARK: 0x28,
  STOP: 0x2e,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  BINFLOAT: 0x47,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  NONE: 0x4e,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  BINUNICODE: 0x58,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  APPENDS: 0x65,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  SETITEMS: 0x75,
  EMPTY_TUPLE: 0x29,
  EMPTY_DICT: 0x7d,
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

const opNames = new Map<number, string>(Object.entries(Op).map(([name, code]) => [code, name]));
const utf8 = new TextDecoder('utf-8');
const HIGHEST_PROTOCOL = 5;

/** Runs the pickle in `bytes` and returns the value STOP leaves. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PickleValue {
  return new Machine(bytes, options).run();
}

class Machine {
  readonly #bytes: Uint8Array;
  readonly #data: DataView;
  readonly #options: UnpickleOptions;
  #pos = 0;
  #opStart = 0;
  #op = 0;
  readonly #stack: PickleValue[] = [];
  /** Stack heights at each open MARK. */
  readonly #marks: number[] = [];
  readonly #memo = new Map<number, PickleValue>();

  constructor(bytes: Uint8Array, options: UnpickleOptions) {
    this.#bytes = bytes;
    this.#data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#options = options;
  }

  readonly fail = (message: string): never => {
    const op = opNames.get(this.#op) ?? `0x${this.#op.toString(16).padStart(2, '0')}`;
    throw new WeightsError(`Malformed pickle in ${this.#options.label} at byte ${this.#opStart} (${op}): ${message}`);
  };

  run(): PickleValue {
    const bytes = this.#bytes;
    const stack = this.#stack;
    while (this.#pos < bytes.length) {
      this.#opStart = this.#pos;
      const op = (this.#op = bytes[this.#pos++]!);
      switch (op) {
        case Op.PROTO: {
          const version = this.#u8();
          if (version > HIGHEST_PROTOCOL) this.fail(`unknown pickle protocol ${version}`);
          break;
        }
        case Op.FRAME:
          this.#take(8); // framing only groups reads; the bytes that follow are ordinary opcodes
          break;
        case Op.STOP:
          return this.#pop();

        case Op.GLOBAL:
          stack.push(this.#global(this.#line(), this.#line()));
          break;
        case Op.STACK_GLOBAL: {
          const name = this.#pop();
          const module = this.#pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('module and name must be strings');
          stack.push(this.#global(module as string, name as string));
          break;
        }
        case Op.REDUCE: {
          const args = this.#pop();
          const callable = this.#pop();
          if (!isFunction(callable)) this.fail('the value to call is not a function');
          if (!isTuple(args)) this.fail('the arguments are not a tuple');
          stack.push((callable as PickleFunction).call(args as readonly PickleValue[], this.fail));
          break;
        }
        case Op.BUILD: {
          this.#pop();
          // An OrderedDict's state is its attributes (a state dict's _metadata): not needed here.
          if (!(this.#top() instanceof Map)) this.fail('BUILD is only accepted on an OrderedDict');
          break;
        }
        case Op.BINPERSID:
          stack.push(this.#options.persistentLoad(this.#pop(), this.fail));
          break;

        case Op.BINPUT:
          this.#memo.set(this.#u8(), this.#top());
          break;
        case Op.LONG_BINPUT:
          this.#memo.set(this.#u32(), this.#top());
          break;
        case Op.MEMOIZE:
          this.#memo.set(this.#memo.size, this.#top());
          break;
        case Op.BINGET:
          stack.push(this.#recall(this.#u8()));
          break;
        case Op.LONG_BINGET:
          stack.push(this.#recall(this.#u32()));
          break;

        case Op.MARK:
          this.#marks.push(stack.length);
          break;
        case Op.EMPTY_DICT:
          stack.push(new Map());
          break;
        case Op.EMPTY_LIST:
          stack.push([]);
          break;
        case Op.EMPTY_TUPLE:
          stack.push(Object.freeze([]));
          break;
        case Op.TUPLE:
          stack.push(Object.freeze(this.#popMark()));
          break;
        case Op.TUPLE1:
        case Op.TUPLE2:
        case Op.TUPLE3: {
          const items = Array.from({ length: op - Op.TUPLE1 + 1 }, () => this.#pop()).reverse();
          stack.push(Object.freeze(items));
          break;
        }
        case Op.SETITEM: {
          const value = this.#pop();
          const key = this.#pop();
          this.#dict().set(key, value);
          break;
        }
        case Op.SETITEMS: {
          const items = this.#popMark();
          if (items.length % 2 !== 0) this.fail('an odd number of items for keys and values');
          const dict = this.#dict();
          for (let i = 0; i < items.length; i += 2) dict.set(items[i]!, items[i + 1]!);
          break;
        }
        case Op.APPEND: {
          const item = this.#pop();
          this.#list().push(item);
          break;
        }
        case Op.APPENDS: {
          const items = this.#popMark();
          const list = this.#list();
          for (const item of items) list.push(item);
          break;
        }

        case Op.NONE:
          stack.push(null);
          break;
        case Op.NEWTRUE:
          stack.push(true);
          break;
        case Op.NEWFALSE:
          stack.push(false);
          break;
        case Op.BININT:
          stack.push(this.#data.getInt32(this.#take(4), true));
          break;
        case Op.BININT1:
          stack.push(this.#u8());
          break;
        case Op.BININT2:
          stack.push(this.#data.getUint16(this.#take(2), true));
          break;
        case Op.LONG1:
          stack.push(this.#long(this.#u8()));
          break;
        case Op.BINFLOAT:
          stack.push(this.#data.getFloat64(this.#take(8), false));
          break;
        case Op.SHORT_BINUNICODE:
          stack.push(this.#string(this.#u8()));
          break;
        case Op.BINUNICODE:
          stack.push(this.#string(this.#u32()));
          break;
        case Op.BINUNICODE8:
          stack.push(this.#string(this.#u64()));
          break;
        case Op.SHORT_BINBYTES:
          stack.push(new Uint8Array(this.#slice(this.#u8())));
          break;
        case Op.BINBYTES:
          stack.push(new Uint8Array(this.#slice(this.#u32())));
          break;
        case Op.BINBYTES8:
          stack.push(new Uint8Array(this.#slice(this.#u64())));
          break;
        default:
          this.fail('an opcode this unpickler does not support');
      }
    }
    this.#opStart = this.#pos;
    return this.fail('the pickle ends without STOP');
  }

  #global(module: string, name: string): PickleValue {
    const qualified = `${module}.${name}`;
    const value = this.#options.globals.get(qualified);
    if (value === undefined) {
      const printable = qualified.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
      const shown = printable.length > 200 ? `${printable.slice(0, 200)}...` : printable;
      throw new UnsafeWeightsError(
        `Refusing to load weights: the pickle in ${this.#options.label} asks for the global '${shown}', ` +
          `which is not on the allowlist (${[...this.#options.globals.keys()].join(', ')})`,
      );
    }
    return value;
  }

  /** Offset of the next n bytes, which must all be there. */
  #take(n: number): number {
    const left = this.#bytes.length - this.#pos;
    if (n > left) this.fail(`needs ${n} bytes but only ${left} are left`);
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  #u8(): number {
    return this.#bytes[this.#take(1)]!;
  }

  #u32(): number {
    return this.#data.getUint32(this.#take(4), true);
  }

  /** An 8-byte length; anything past 2^53 is certainly more than is left, and is refused as such. */
  #u64(): number {
    const value = this.#data.getBigUint64(this.#take(8), true);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
  }

  #slice(length: number): Uint8Array {
    const at = this.#take(length);
    return this.#bytes.subarray(at, at + length);
  }

  #string(length: number): string {
    return utf8.decode(this.#slice(length));
  }

  /** GLOBAL's arguments: newline-terminated text within what is left. */
  #line(): string {
    const end = this.#bytes.indexOf(0x0a, this.#pos);
    if (end < 0) this.fail('a module or name without its newline');
    const text = utf8.decode(this.#bytes.subarray(this.#pos, end));
    this.#pos = end + 1;
    return text;
  }

  /** Little-endian two's complement, as a number where exact, else a bigint. */
  #long(length: number): number | bigint {
    const digits = this.#slice(length);
    let value = 0n;
    for (let i = digits.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(digits[i]!);
    if (length > 0 && digits[length - 1]! & 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  #recall(index: number): PickleValue {
    if (!this.#memo.has(index)) this.fail(`memo entry ${index} was never stored`);
    return this.#memo.get(index)!;
  }

  /** The stack's floor: values below the innermost MARK belong to an outer level. */
  #floor(): number {
    return this.#marks.length > 0 ? this.#marks[this.#marks.length - 1]! : 0;
  }

  #pop(): PickleValue {
    if (this.#stack.length <= this.#floor()) this.fail('stack underflow');
    return this.#stack.pop()!;
  }

  #top(): PickleValue {
    if (this.#stack.length <= this.#floor()) this.fail('stack underflow');
    return this.#stack[this.#stack.length - 1]!;
  }

  #popMark(): PickleValue[] {
    const mark = this.#marks.pop();
    if (mark === undefined) this.fail('no MARK to pop to');
    return this.#stack.splice(mark!);
  }

  #dict(): Map<PickleValue, PickleValue> {
    const target = this.#top();
    if (!(target instanceof Map)) this.fail('items can only be set on a dict');
    return target as Map<PickleValue, PickleValue>;
  }

  #list(): PickleValue[] {
    const target = this.#top();
    if (!Array.isArray(target) || isTuple(target)) this.fail('items can only be appended to a list');
    return target as PickleValue[];
  }
}
