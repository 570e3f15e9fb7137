// Download progress: a user callback as is, or `true` for a progress bar on stderr (drawn by
// cli-progress, only when stderr is a terminal, so logs and CI output stay clean).
import cliProgress from 'cli-progress';
import type { DownloadProgress } from './download.js';
import * as v from '../validate.js';

export type ProgressOption = boolean | ((p: DownloadProgress) => void);

export interface ProgressReporter {
  onProgress?: (p: DownloadProgress) => void;
  /** Stops a bar that was drawn (call on success and on failure). */
  done(): void;
}

export function progressReporter(option: ProgressOption | undefined, label: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (option === undefined || option === false) return { done() {} };
  if (typeof option === 'function') return { onProgress: option, done() {} };
  if (option !== true) throw v.invalid('a boolean or a function', 'progress', option);
  if (!stream.isTTY) return { done() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% {value}/{total} MB`, hideCursor: true, stream, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress({ received, total }) {
      const mb = (n: number) => Math.round(n / 1e5) / 10;
      if (!started) {
        bar.start(mb(total ?? received), 0);
        started = true;
      }
      if (total === undefined) bar.setTotal(mb(received));
      bar.update(mb(received));
    },
    done() {
      if (started) bar.stop();
    },
  };
}
