// A training run's curves as JSON Lines: one `run` record that says what was trained, then
// `iteration` records (training loss and error over the last N steps) and `epoch` records (the
// epoch's training figures and the test set's). `resnet plot` and plotCurves() read these files.
//
// Resuming: a run restarted from the checkpoint of iteration k keeps the records up to k and drops
// the ones a killed process wrote after its last checkpoint, so a resumed run's file reads as an
// uninterrupted run's. The file is rewritten through a temporary file and a rename, so a crash while
// trimming leaves the old file, never a half-written one.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { DataError } from '../data/errors.js';

export interface RunRecord {
  type: 'run';
  /** model.arch, e.g. 'resnet20', 'plain56'. */
  arch: string;
  numParameters: number;
  batchSize: number;
  epochs: number;
  iterationsPerEpoch: number;
  seed: number;
  /** Free-form description of the run (data set, optimizer, schedule...). */
  [key: string]: unknown;
}

export interface IterationRecord {
  type: 'iteration';
  epoch: number;
  /** Steps done, the last one of the window included. */
  iteration: number;
  /** Mean over the steps since the previous iteration record or the epoch's start, whichever is later. */
  trainLoss: number;
  trainError: number;
  lr: number;
  imagesPerSecond: number;
}

export interface EpochRecord {
  type: 'epoch';
  /** Epochs done (1 after the first). */
  epoch: number;
  iteration: number;
  /** Means over the epoch's steps (in train mode, on augmented images, as the paper's curves). */
  trainLoss: number;
  trainError: number;
  /** The test (validation) set in eval mode, when fit() has one. */
  testLoss?: number;
  testError?: number;
  testTop5Error?: number;
  lr: number;
  imagesPerSecond: number;
  seconds: number;
}

export type MetricsRecord = RunRecord | IterationRecord | EpochRecord;

/** Parses a metrics file; a line that is not a record is a DataError naming the file and line. */
export async function readMetrics(path: string): Promise<MetricsRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw unreadable(path, error);
  }
  return parseMetrics(text, path);
}

function unreadable(path: string, error: unknown): DataError {
  const code = (error as NodeJS.ErrnoException).code;
  return new DataError(`cannot read the metrics file '${path}' (${code ?? (error as Error).message})`, { file: path, cause: error });
}

export function parseMetrics(text: string, source: string): MetricsRecord[] {
  const records: MetricsRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // A process killed mid-write leaves a partial last line; anything else is damage.
      if (i === lines.length - 1) break;
      throw new DataError(`${source}:${i + 1}: expected a JSON record, got '${line.slice(0, 60)}'`, { file: source });
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (type !== 'run' && type !== 'iteration' && type !== 'epoch') {
      throw new DataError(`${source}:${i + 1}: expected a record of type 'run', 'iteration' or 'epoch', got ${JSON.stringify(type)}`, { file: source });
    }
    if (type !== 'run' && typeof (value as { iteration?: unknown }).iteration !== 'number') {
      throw new DataError(`${source}:${i + 1}: expected a numeric 'iteration' in a '${type}' record`, { file: source });
    }
    records.push(value as MetricsRecord);
  }
  return records;
}

/** Appends records to a run's metrics file. */
export class MetricsLog {
  private constructor(readonly path: string) {}

  /**
   * Opens `path` for a run at `iteration` (0 for a new run, which replaces the file): keeps the
   * records up to that iteration and puts `run` first in place of the old run record.
   */
  static async open(path: string, run: RunRecord, iteration: number): Promise<MetricsLog> {
    await mkdir(dirname(path), { recursive: true });
    let text: string | undefined;
    try {
      text = iteration === 0 ? undefined : await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(path, error);
    }
    // The run record describes the run as it goes on now (a resumed run may have more epochs).
    const kept = text === undefined ? [] : parseMetrics(text, path).filter((r) => r.type !== 'run' && r.iteration <= iteration);
    kept.unshift(run);
    await writeFileAtomic(path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return new MetricsLog(path);
  }

  async write(record: IterationRecord | EpochRecord): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(record)}\n`);
  }
}
