// Where streamed samples come from: an ImageFolder (files read by the workers themselves, in a
// seeded random order per epoch), or WebDataset tar shards (read sequentially by a tar parser on
// this thread, the shard order shuffled per epoch). Both yield samples in epoch order, or this
// process's share of it (a Selection's shard); a folder also visits an explicit list of indices.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Parser, type ReadEntry } from 'tar';
import { epochOrder } from '../data/augment.js';
import { DataError } from '../data/errors.js';
import { scanImageFolder } from '../data/image-folder.js';
import { shardLength, shardOf, type Selection } from '../data/sample-order.js';
import { InvalidArgumentError } from '../errors.js';

export interface Sample {
  /** Position in the data set (the folder's sorted order; a shard set's order). */
  index: number;
  label: number;
  /** For messages: the file, or `shard.tar:key`. */
  name: string;
  file?: string;
  bytes?: Uint8Array;
}

export interface SampleSource {
  readonly length: number;
  readonly classes: readonly string[];
  /** Whether any sample can be read on its own (a selection's `indices`); a tar shard is read in sequence. */
  readonly randomAccess: boolean;
  /** The samples of one epoch, in order; with a selection, the indices it lists or this rank's shard of the epoch. */
  epoch(seed: number, epoch: number, shuffle: boolean, selection?: Selection | null): AsyncIterable<Sample>;
}

export async function folderSource(root: string): Promise<SampleSource> {
  const { classes, samples } = await scanImageFolder(root);
  return {
    length: samples.length,
    classes,
    randomAccess: true,
    async *epoch(seed, epoch, shuffle, selection = null) {
      const order =
        selection !== null && 'indices' in selection
          ? selection.indices
          : selection !== null
            ? shardOf(epochOrder(samples.length, shuffle, seed, epoch), selection.shard)
            : epochOrder(samples.length, shuffle, seed, epoch);
      for (const index of order) {
        const s = samples[index]!;
        yield { index, label: s.label, name: s.path, file: s.path };
      }
    },
  };
}

/** The image extensions a WebDataset sample may carry its picture under. */
const imageKeys = ['jpg', 'jpeg', 'png', 'webp'];

/** WebDataset's split of a member name: the key is the path up to the first dot of its last component. */
function splitName(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  const dot = path.indexOf('.', slash + 1);
  return dot < 0 ? [path, ''] : [path.slice(0, dot), path.slice(dot + 1).toLowerCase()];
}

interface ShardIndex {
  shard: string;
  /** Sample keys in file order, with their label (read at indexing: .cls files are tiny). */
  keys: Array<{ key: string; label: number }>;
}

function collect(entry: ReadEntry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => resolve(Buffer.concat(chunks)));
    entry.on('error', reject);
  });
}

/**
 * Reads one shard from start to end, calling `onSample` for each complete sample (an image and a
 * .cls); `wantImages` false skips the image bytes (indexing). A sample without a label, or
 * without an image, is `onBad`'s to report.
 */
async function readShard(
  shard: string,
  wantImages: boolean,
  onSample: (key: string, label: number, image: Buffer | null) => void | Promise<void>,
  onBad: (name: string, why: string) => void,
): Promise<void> {
  let info;
  try {
    info = await stat(shard);
  } catch (error) {
    throw new DataError(`Cannot read the shard '${shard}' (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { file: shard, cause: error });
  }
  if (!info.isFile()) throw new DataError(`The shard '${shard}' is not a file`, { file: shard });
  interface Member {
    key: string;
    image: Buffer | null;
    hasImage: boolean;
    label: number | null;
    /** The member bodies still being read. */
    parts: Array<Promise<void>>;
  }
  let current: Member | null = null;
  // Samples are finished in file order, each once its members' bodies are in.
  let chain: Promise<void> = Promise.resolve();
  const finish = () => {
    if (!current) return;
    const c = current;
    current = null;
    chain = chain.then(async () => {
      await Promise.all(c.parts);
      if (c.label === null) onBad(`${shard}:${c.key}`, 'it has no .cls label');
      else if (!c.hasImage) onBad(`${shard}:${c.key}`, `it has no image (.${imageKeys.join(', .')})`);
      else await onSample(c.key, c.label, c.image);
    });
    chain.catch(() => {}); // observed below
  };
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        if (entry.type !== 'File') {
          entry.resume();
          return;
        }
        const [key, ext] = splitName(entry.path);
        if (current && current.key !== key) finish();
        current ??= { key, image: null, hasImage: false, label: null, parts: [] };
        const c = current;
        if (imageKeys.includes(ext) && !c.hasImage) {
          c.hasImage = true;
          if (wantImages) c.parts.push(collect(entry).then((b) => void (c.image = b)));
          else entry.resume();
        } else if (ext === 'cls') {
          c.parts.push(
            collect(entry).then((b) => {
              const text = b.toString('utf8').trim();
              if (/^\d+$/.test(text)) c.label = Number(text);
            }),
          );
        } else entry.resume();
      },
    });
    parser.on('error', (error: Error) => reject(new DataError(`Cannot read the shard '${shard}': ${error.message}`, { file: shard, cause: error })));
    parser.on('warn', (code: string, message: string) => reject(new DataError(`Cannot read the shard '${shard}': ${message} (${code})`, { file: shard })));
    parser.on('end', () => resolve());
    const stream = createReadStream(shard);
    stream.on('error', (error) => reject(new DataError(`Cannot read the shard '${shard}': ${error.message}`, { file: shard, cause: error })));
    stream.pipe(parser);
  });
  finish();
  await chain;
}

export interface WebDatasetOptions {
  /** Class names by label; default the labels found, as their numbers. */
  classes?: readonly string[];
  /** Reports samples without an image or label; default: throw a DataError. */
  onBad?: (name: string, why: string) => void;
}

/** Indexes the shards (one pass over their headers and labels), then streams them epoch by epoch. */
export async function webDatasetSource(shards: readonly string[], options: WebDatasetOptions = {}): Promise<SampleSource> {
  const onBad =
    options.onBad ??
    ((name: string, why: string) => {
      throw new DataError(`The sample '${name}' is incomplete: ${why}`, { file: name.slice(0, name.lastIndexOf(':')) });
    });
  const index: ShardIndex[] = [];
  for (const shard of shards) {
    const keys: ShardIndex['keys'] = [];
    await readShard(shard, false, (key, label) => void keys.push({ key, label }), onBad);
    index.push({ shard, keys });
  }
  const starts: number[] = [];
  let total = 0;
  for (const s of index) {
    starts.push(total);
    total += s.keys.length;
  }
  if (total === 0) throw new DataError(`No sample (an image with a .cls label) in ${shards.length} shard(s)`, { file: shards[0] ?? '' });
  const maxLabel = Math.max(...index.flatMap((s) => s.keys.map((k) => k.label)));
  const classes = options.classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  if (maxLabel >= classes.length) throw new DataError(`Label ${maxLabel} in the shards, but only ${classes.length} class names`, { file: shards[0]! });
  return {
    length: total,
    classes,
    randomAccess: false,
    async *epoch(seed, epoch, shuffle, selection = null) {
      if (selection !== null && 'indices' in selection) throw new InvalidArgumentError('A WebDataset source reads its shards in sequence and cannot visit a list of indices');
      // With a shard of the epoch (rank, worldSize): the epoch's positions rank, rank + worldSize,
      // ... below limit, counted over the shards in this epoch's order.
      const part = selection?.shard ?? { rank: 0, worldSize: 1 };
      const limit = shardLength(total, part.worldSize) * part.worldSize;
      const kept = (p: number) => p < limit && p % part.worldSize === part.rank;
      let first = 0; // the epoch position of the shard's first sample
      for (const s of epochOrder(index.length, shuffle, seed, epoch)) {
        const { shard, keys } = index[s]!;
        const start = first;
        first += keys.length;
        // A tar shard holding none of this rank's positions is not read at all.
        const firstKept = start + ((((part.rank - start) % part.worldSize) + part.worldSize) % part.worldSize);
        if (firstKept >= Math.min(first, limit)) continue;
        const samples: Sample[] = [];
        let position = starts[s]!;
        let p = start;
        // A shard is read whole before its samples go out: shards are meant to be small enough.
        await readShard(
          shard,
          true,
          (key, label, image) => {
            const index = position++;
            if (kept(p++)) samples.push({ index, label, name: `${shard}:${key}`, bytes: image! });
          },
          onBad,
        );
        yield* samples;
      }
    },
  };
}
