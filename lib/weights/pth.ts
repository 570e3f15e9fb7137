// PyTorch .pth files (what torch.save(state_dict, f) writes, PyTorch >= 1.6): read into and
// written from Record<string, Tensor>. See zip.ts for the archive and pickle.ts for the restricted
// unpickler; nothing in a file is ever executed.
import { WeightsError } from '../errors.js';
import { arrayTypeOf, Tensor, type TensorLike } from '../tensor.js';
import { invalid, knownKeys, plainObject, setOwn } from '../validate.js';
import { isTuple, unpickle, type PickleValue } from './pickle.js';
import { elementSize, encodeStateDict, storageLoader, TensorRef, torchGlobals, type TensorRecord } from './torch-pickle.js';
import { allocate, openSource, ZipReader, type ByteSource } from './zip.js';
import { writeZip, type ZipWriteEntry } from './zip-writer.js';

export interface ReadPthOptions {
  /** The checkpoint key that holds the state dict, e.g. 'model' in { model, optimizer, epoch }. */
  key?: string;
  /** Remove this prefix from every key that has it; true means 'module.' (nn.DataParallel). */
  stripPrefix?: string | boolean;
}

/** Keys tried, in this order, when a checkpoint is not itself a state dict and no key is given. */
const commonKeys = ['state_dict', 'model', 'model_state_dict', 'net'];

/** torch.save before 1.6: PROTO, then the magic number 0x1950a86a20f9469cfc6c as a LONG1. */
const legacyMagic = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * Reads the state dict in a .pth file (a path, or the file's bytes). Tensors come out contiguous
 * and row-major: a contiguous tensor is a view of its storage's bytes (tensors that share a storage
 * share memory, as in PyTorch), any other layout is copied.
 */
export async function readPth(source: string | Uint8Array, options: ReadPthOptions = {}): Promise<Record<string, Tensor>> {
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) throw invalid('a path or a Uint8Array', 'source', source);
  const { key, prefix } = readOptions(options);
  const bytes = await openSource(source);
  try {
    await checkFormat(bytes);
    const zip = await ZipReader.open(bytes);
    const root = archiveRoot(zip);
    await checkByteOrder(zip, root);
    const label = `${root}/data.pkl in ${zip.label}`;
    const top = unpickle(await zip.read(`${root}/data.pkl`), { label, globals: torchGlobals, persistentLoad: storageLoader() });
    const stateDict = selectStateDict(top, key, zip.label);

    const storages = new Map<string, ArrayBuffer>();
    const out: Record<string, Tensor> = {};
    for (const [name, ref] of stateDict) {
      const stripped = prefix !== undefined && name.startsWith(prefix) ? name.slice(prefix.length) : name;
      if (Object.hasOwn(out, stripped)) {
        throw new WeightsError(`Stripping '${prefix}' from the keys of ${zip.label} gives '${stripped}' twice`);
      }
      let storage = storages.get(ref.storage.key);
      if (storage === undefined) {
        storage = await readStorage(zip, root, ref);
        storages.set(ref.storage.key, storage);
      }
      const tensor = materialise(ref, storage);
      setOwn(out, stripped, tensor); // a key such as '__proto__' must become a key, not the prototype
    }
    return out;
  } finally {
    await bytes.close();
  }
}

function readOptions(options: ReadPthOptions): { key: string | undefined; prefix: string | undefined } {
  const given = plainObject('readPth options', options);
  knownKeys('readPth', given, ['key', 'stripPrefix']);
  if (given.key !== undefined && typeof given.key !== 'string') throw invalid('a string', 'key', given.key);
  const strip = given.stripPrefix;
  if (strip !== undefined && typeof strip !== 'string' && typeof strip !== 'boolean') {
    throw invalid('a string or a boolean', 'stripPrefix', strip);
  }
  return { key: given.key, prefix: strip === true ? 'module.' : typeof strip === 'string' && strip !== '' ? strip : undefined };
}

/** A zip, or a WeightsError that says what the file is instead. */
async function checkFormat(source: ByteSource): Promise<void> {
  const head = await source.read(0, Math.min(16, source.size));
  if (head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) return; // PK\3\4, PK\5\6 (empty)
  if (head[0] === 0x80 && legacyMagic.every((byte, i) => head[i + 2] === byte)) {
    throw new WeightsError(
      `Cannot read ${source.label}: it is in the legacy (pre-1.6) serialization format of torch.save, which is not ` +
        'supported; load it in Python and re-save it with torch.save in PyTorch >= 1.6',
    );
  }
  if (head.length === 0) throw new WeightsError(`Cannot read ${source.label}: the file is empty`);
  const hex = [...head].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = [...head].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  throw new WeightsError(
    `Cannot read ${source.label}: not a PyTorch checkpoint (a zip archive written by torch.save); ` +
      `its first bytes are ${hex} ('${text}')`,
  );
}

/** torch >= 2.1 records the byte order; tensors are read as little-endian, the only order handled. */
async function checkByteOrder(zip: ZipReader, root: string): Promise<void> {
  const name = `${root}/byteorder`;
  if (!zip.entries.has(name)) return;
  const order = new TextDecoder().decode(await zip.read(name)).trim();
  if (order !== 'little') throw new WeightsError(`${zip.label} holds ${order}-endian tensors; only little-endian files are supported`);
}

/** The folder holding data.pkl: torch.save names it after the file, so it varies. */
function archiveRoot(zip: ZipReader): string {
  const roots = [...zip.entries.keys()].flatMap((name) => /^([^/]+)\/data\.pkl$/.exec(name)?.slice(1) ?? []);
  const names = [...zip.entries.keys()];
  // torch.jit.save writes a data.pkl too (of the scripted modules, not of tensors), beside its
  // constants.pkl and code/ folder: say what the file is before its pickle asks for __torch__ classes.
  if (names.some((name) => name.endsWith('/constants.pkl'))) {
    throw new WeightsError(`${zip.label} is a TorchScript archive (torch.jit.save), not a torch.save checkpoint`);
  }
  if (roots.length === 1) return roots[0]!;
  if (roots.length > 1) {
    throw new WeightsError(`${zip.label} has several data.pkl files: ${roots.map((r) => `'${r}/data.pkl'`).join(', ')}`);
  }
  const shown = names.slice(0, 10).map((n) => `'${n}'`).join(', ');
  throw new WeightsError(`${zip.label} is a zip archive without a data.pkl (entries: ${shown || 'none'})`);
}

type StateDictRefs = Map<string, TensorRef>;

function isStateDict(value: PickleValue | undefined): value is StateDictRefs {
  if (!(value instanceof Map)) return false;
  for (const [key, item] of value) if (typeof key !== 'string' || !(item instanceof TensorRef)) return false;
  return true;
}

function showKeys(dict: Map<PickleValue, PickleValue>): string {
  const keys = [...dict.keys()].map((k) => (typeof k === 'string' ? `'${k.length > 80 ? `${k.slice(0, 80)}...` : k}'` : kind(k)));
  return keys.length > 30 ? `${keys.slice(0, 30).join(', ')} and ${keys.length - 30} more` : keys.join(', ') || 'none';
}

function kind(value: PickleValue | undefined): string {
  if (value === null) return 'None';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value instanceof Map) return 'a dict';
  if (value instanceof TensorRef) return 'a tensor';
  if (Array.isArray(value)) return isTuple(value) ? 'a tuple' : 'a list';
  return `a ${typeof value}`;
}

/** The checkpoint itself when it is a flat mapping of tensors; else the one under `key` or, with
 * no key given, under the one common key that holds such a mapping. */
function selectStateDict(top: PickleValue, key: string | undefined, label: string): StateDictRefs {
  if (!(top instanceof Map)) throw new WeightsError(`${label} holds ${kind(top)}, not a dict of tensors`);
  if (key !== undefined) {
    if (!top.has(key)) throw new WeightsError(`${label} has no key '${key}' — keys present: ${showKeys(top)}`);
    const value = top.get(key);
    if (!isStateDict(value)) {
      throw new WeightsError(`The value under '${key}' in ${label} is ${kind(value)}, not a flat mapping of names to tensors`);
    }
    return value;
  }
  if (isStateDict(top)) return top;
  const fits = commonKeys.filter((k) => isStateDict(top.get(k)));
  if (fits.length === 1) return top.get(fits[0]!) as StateDictRefs;
  const why =
    fits.length === 0
      ? `it is not a flat mapping of names to tensors and none of ${commonKeys.map((k) => `'${k}'`).join(', ')} holds one`
      : `several keys hold a state dict (${fits.map((k) => `'${k}'`).join(', ')})`;
  throw new WeightsError(
    `Cannot tell which state dict to read from ${label}: ${why}; pass { key } — keys present: ${showKeys(top)}`,
  );
}

async function readStorage(zip: ZipReader, root: string, ref: TensorRef): Promise<ArrayBuffer> {
  const { key, dtype, numel } = ref.storage;
  const name = `${root}/data/${key}`;
  const entry = zip.entries.get(name);
  if (entry === undefined) throw new WeightsError(`${zip.label} has no entry '${name}' for a storage the pickle refers to`);
  const expected = numel * elementSize[dtype];
  if (entry.size !== expected) {
    throw new WeightsError(
      `Storage '${name}' in ${zip.label} has ${entry.size} bytes, but ${numel} ${dtype} elements need ${expected}`,
    );
  }
  const bytes = await zip.read(name);
  return bytes.buffer as ArrayBuffer; // zip.read returns bytes that own their buffer from byte 0
}

/** Unsigned words of each element size, to move elements bit for bit (a NaN's payload included).
 * 8-byte elements move as two 32-bit words: BigUint64Array would allocate a bigint per element. */
const wordArrays = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Uint32Array } as const;
type Words = Uint8Array | Uint16Array | Uint32Array;

function materialise(ref: TensorRef, storage: ArrayBuffer): Tensor {
  const { shape, stride, offset } = ref;
  const { dtype } = ref.storage;
  const ArrayClass = arrayTypeOf[dtype];
  const size = elementSize[dtype];
  const numel = shape.reduce((n, d) => n * d, 1);
  const contiguous = shape.every((d, i) => d <= 1 || stride[i] === shape.slice(i + 1).reduce((n, e) => n * e, 1));
  if (contiguous) return new Tensor(new ArrayClass(storage, offset * size, numel), shape, dtype);

  const output = allocate(numel * size, `a tensor of shape [${shape.join(', ')}]`);
  if (numel > 0) {
    const Words = wordArrays[size as 1 | 2 | 4 | 8];
    if (size === 8) {
      // Each element is a trailing dimension of two adjacent words.
      gather(new Words(storage), new Words(output), [...shape, 2], [...stride.map((s) => 2 * s), 1], 2 * offset);
    } else {
      gather(new Words(storage), new Words(output), shape, stride, offset);
    }
  }
  return new Tensor(new ArrayClass(output), shape, dtype);
}

/** Copies a strided view into row-major order, walking the last dimension in the inner loop. */
function gather(source: Words, target: Words, shape: readonly number[], stride: readonly number[], offset: number): void {
  const last = shape.length - 1;
  const count = shape[last]!;
  const step = stride[last]!;
  const index = new Array<number>(last).fill(0);
  let base = offset;
  let out = 0;
  for (;;) {
    for (let i = 0, at = base; i < count; i++, at += step) target[out++] = source[at]!;
    let d = last - 1;
    for (; d >= 0; d--) {
      base += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      base -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

/**
 * Writes tensors as torch.save would write an OrderedDict state dict: torch.load (with
 * weights_only=True too) reads it back. Written to a temporary file and renamed into place. The
 * tensors' memory is written as it is, without a copy: do not change it until the promise settles.
 */
export async function writePth(path: string, tensors: Record<string, Tensor | TensorLike>): Promise<void> {
  if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
  const given = plainObject('tensors', tensors);
  const records: TensorRecord[] = [];
  const entries: ZipWriteEntry[] = [];
  Object.entries(given).forEach(([name, value], index) => {
    const tensor = Tensor.from(value as Tensor);
    const key = String(index);
    records.push({ name, dtype: tensor.dtype, shape: tensor.shape, key });
    const { buffer, byteOffset, byteLength } = tensor.data;
    entries.push({ name: `archive/data/${key}`, data: new Uint8Array(buffer, byteOffset, byteLength) });
  });
  const encoder = new TextEncoder();
  await writeZip(path, [
    { name: 'archive/data.pkl', data: encodeStateDict(records) },
    { name: 'archive/byteorder', data: encoder.encode('little') },
    ...entries,
    { name: 'archive/version', data: encoder.encode('3\n') },
  ]);
}
