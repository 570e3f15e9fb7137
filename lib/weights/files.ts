// Weights files by format: PyTorch's .pth (torch.save's zip archive) and safetensors. The format
// is taken from the file's first bytes when reading and from the file name (or { format }) when
// writing.
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { InvalidArgumentError, WeightsError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import * as v from '../validate.js';
import { readPth, writePth } from './pth.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

export type WeightsFormat = 'pth' | 'safetensors';
export const weightsFormats = ['pth', 'safetensors'] as const;

export interface LoadWeightsOptions {
  /** For checkpoints that nest the state dict ({ model, optimizer, epoch }): the key to take. */
  key?: string;
  /** Strip a key prefix: true strips DataParallel's 'module.'; a string strips that prefix. */
  stripPrefix?: string | boolean;
}

export interface SaveWeightsOptions {
  /** Default: from the file name (.safetensors; .pth, .pt, .bin, .ckpt). */
  format?: WeightsFormat;
  /** safetensors only: string metadata stored in the header. */
  metadata?: Record<string, string>;
}

const pthExtensions = ['.pth', '.pt', '.bin', '.ckpt', '.tar'];

/** Reads the first bytes: a zip archive (or a legacy pickle) is .pth, anything else safetensors. */
async function sniff(path: string): Promise<WeightsFormat> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WeightsError(`Cannot read weights file '${path}': ${code ?? String(error)}`);
  }
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    const zip = head[0] === 0x50 && head[1] === 0x4b;
    const pickle = head[0] === 0x80; // PROTO opcode: the pre-1.6 format, which readPth explains
    return zip || pickle ? 'pth' : 'safetensors';
  } finally {
    await handle.close();
  }
}

function stripKeys(tensors: Record<string, Tensor>, prefix: string): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [key, tensor] of Object.entries(tensors)) {
    v.setOwn(out, key.startsWith(prefix) ? key.slice(prefix.length) : key, tensor);
  }
  return out;
}

/** Every tensor of a .pth or .safetensors file, by name. */
export async function loadWeights(path: string, options: LoadWeightsOptions = {}): Promise<Record<string, Tensor>> {
  return (await readWeightsFile(path, options)).tensors;
}

/** loadWeights(), plus a safetensors file's string metadata (null for a .pth file). */
export async function readWeightsFile(path: string, options: LoadWeightsOptions = {}): Promise<{ tensors: Record<string, Tensor>; metadata: Record<string, string> | null }> {
  if (typeof path !== 'string' || path === '') throw v.invalid('a file path', 'path', path);
  v.knownKeys('loadWeights', v.plainObject('options', options), ['key', 'stripPrefix']);
  if (options.key !== undefined && typeof options.key !== 'string') throw v.invalid('a string', 'key', options.key);
  const { stripPrefix } = options;
  if (stripPrefix !== undefined && typeof stripPrefix !== 'string' && typeof stripPrefix !== 'boolean') {
    throw v.invalid('a string or boolean', 'stripPrefix', stripPrefix);
  }
  if ((await sniff(path)) === 'pth') return { tensors: await readPth(path, options), metadata: null };
  if (options.key !== undefined) {
    throw new InvalidArgumentError(`Expected no key for a safetensors file (it holds one flat state dict) but received '${options.key}' of type string`);
  }
  const { tensors, metadata } = await readSafetensors(path);
  const prefix = stripPrefix === true ? 'module.' : stripPrefix || '';
  return { tensors: prefix ? stripKeys(tensors, prefix) : tensors, metadata };
}

export function formatFor(path: string, format?: WeightsFormat): WeightsFormat {
  if (format !== undefined) return v.oneOf('format', format, weightsFormats);
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (pthExtensions.includes(ext)) return 'pth';
  throw new InvalidArgumentError(
    `Expected a file name ending in .safetensors or ${pthExtensions.join(', ')} (or a format option) for path but received '${path}' of type string`,
  );
}

/** Writes tensors as a .pth that torch.load(weights_only=True) accepts, or as safetensors. The
 * file appears atomically: a failed write never leaves a partial file at `path`. */
export async function saveWeights(path: string, tensors: Record<string, Tensor>, options: SaveWeightsOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path === '') throw v.invalid('a file path', 'path', path);
  v.knownKeys('saveWeights', v.plainObject('options', options), ['format', 'metadata']);
  v.plainObject('tensors', tensors);
  const format = formatFor(path, options.format);
  if (format === 'safetensors') return writeSafetensors(path, tensors, options.metadata);
  if (options.metadata !== undefined) {
    throw new InvalidArgumentError('Expected no metadata for a .pth file (only safetensors stores metadata) but received an object');
  }
  return writePth(path, tensors);
}
