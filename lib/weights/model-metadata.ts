// What a saved model needs besides its tensors to be used again without the user repeating it:
// the architecture and its options (to rebuild it: loadModel()), the class names, and the
// preprocessing it was trained with. model.save() writes it as JSON into a safetensors file's
// __metadata__ (under `metadataKey`), or next to a .pth file as `<file>.json` (torch.save's
// archive is read by PyTorch users, who must not find anything but the state dict in it).
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-write.js';
import type { ArchitectureSpec } from '../architectures.js';
import type { Tensor } from '../tensor.js';
import { saveWeights, type WeightsFormat } from './files.js';
import { WeightsError } from '../errors.js';
import { checkPreprocessOptions, type PreprocessOptions } from '../image/preprocess-options.js';
import { resolveConfig, type ResNetConfig } from '../options.js';
import * as v from '../validate.js';

export const metadataKey = 'libtorch-resnet.model';
const version = 1;

/** The structural options of a config: enough to build the same network again. */
const structureKeys = ['block', 'stem', 'widths', 'shortcut', 'layers', 'groups', 'widthPerGroup', 'numClasses', 'zeroInitResidual', 'replaceStrideWithDilation', 'inChannels'] as const;
export type ModelStructure = Pick<ResNetConfig, (typeof structureKeys)[number]>;

export interface ModelMetadata {
  /** The builder's name ('resnet18', 'plain20', ...) or 'resnet' for createResNet(). */
  arch: string;
  structure: ModelStructure;
  /** One name per class, in label order. */
  classes?: string[];
  /** preprocess() options that give the model's input from an image file. */
  preprocess?: PreprocessOptions;
}

export function structureOf(config: ResNetConfig): ModelStructure {
  // Copies (arrays included): the description must not change with the config it came from.
  return structuredClone(Object.fromEntries(structureKeys.map((key) => [key, config[key]]))) as ModelStructure;
}

export function encodeMetadata(metadata: ModelMetadata): string {
  return JSON.stringify({ version, ...metadata });
}

/** The sidecar of a .pth file: `model.pth` -> `model.pth.json`. */
export const sidecarPath = (path: string) => `${path}.json`;

/**
 * Parses and checks metadata written by encodeMetadata(). Damage of any kind is a WeightsError
 * naming the file and what is wrong: a half-valid description must not build a wrong model.
 */
export function decodeMetadata(text: string, file: string): ModelMetadata {
  const fail = (what: string, cause?: unknown) =>
    new WeightsError(`The model description in '${file}' is damaged: ${what}`, cause === undefined ? undefined : { cause });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw fail(`it is not JSON (${(error as Error).message})`, error);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('expected a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.version !== version) throw fail(`expected version ${version}, found ${JSON.stringify(o.version)} (written by another release of libtorch-resnet?)`);
  const unknown = Object.keys(o).filter((k) => !['version', 'arch', 'structure', 'classes', 'preprocess'].includes(k));
  if (unknown.length > 0) throw fail(`unknown entries ${unknown.map((k) => `'${k}'`).join(', ')}`);
  if (typeof o.arch !== 'string' || o.arch === '') throw fail('expected an architecture name in "arch"');
  let structure: ModelStructure;
  try {
    const s = v.plainObject('structure', o.structure);
    v.knownKeys('structure', s, structureKeys);
    const spec = s as unknown as ArchitectureSpec & ModelStructure;
    structure = structureOf(resolveConfig(o.arch, spec, { ...spec, seed: 0 }));
  } catch (error) {
    throw fail(`"structure": ${(error as Error).message}`, error);
  }
  const metadata: ModelMetadata = { arch: o.arch, structure };
  if (o.classes !== undefined) {
    const classes = o.classes;
    if (!Array.isArray(classes) || classes.length !== structure.numClasses || !classes.every((c) => typeof c === 'string')) {
      throw fail(`expected "classes" to be ${structure.numClasses} strings, found ${v.describe(classes)}`);
    }
    metadata.classes = classes as string[];
  }
  if (o.preprocess !== undefined) {
    try {
      metadata.preprocess = checkPreprocessOptions(o.preprocess);
    } catch (error) {
      throw fail(`"preprocess": ${(error as Error).message}`, error);
    }
  }
  return metadata;
}

/** The description in a file's safetensors metadata, or in a .pth file's sidecar; null if none. */
export async function readModelMetadata(path: string, safetensorsMetadata: Record<string, string> | null): Promise<ModelMetadata | null> {
  if (safetensorsMetadata !== null) {
    const text = v.ownEntry(safetensorsMetadata, metadataKey);
    return text === undefined ? null : decodeMetadata(text, path);
  }
  let text: string;
  try {
    text = await readFile(sidecarPath(path), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new WeightsError(`Cannot read the model description '${sidecarPath(path)}' (${code ?? String(error)})`, { cause: error });
  }
  return decodeMetadata(text, sidecarPath(path));
}

/**
 * Writes tensors with a description (or none): into a safetensors file's metadata, or as the
 * sidecar of a .pth file. A .pth file's old sidecar is removed first, so that a failure between the
 * two writes never pairs new weights with an old description.
 */
export async function saveDescribed(
  path: string,
  format: WeightsFormat,
  tensors: Record<string, Tensor>,
  description: ModelMetadata | null,
  metadata: Record<string, string> = {},
): Promise<void> {
  const text = description && encodeMetadata(description);
  if (format === 'safetensors') {
    await saveWeights(path, tensors, { format, metadata: { format: 'pt', ...(text !== null && { [metadataKey]: text }), ...metadata } });
    return;
  }
  await rm(sidecarPath(path), { force: true });
  await saveWeights(path, tensors, { format, ...(Object.keys(metadata).length > 0 && { metadata }) });
  if (text !== null) await writeFileAtomic(sidecarPath(path), text);
}
