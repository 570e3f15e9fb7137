// `resnet predict`: the top classes of image files, with a trained model's own classes and
// preprocessing (read from the file `resnet train --out` wrote) or torchvision's weights.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fg from 'fast-glob';
import { imageExtensions } from '../lib/data/image-folder.js';
import { ImageError } from '../lib/image/errors.js';
import type { ResNet } from '../lib/model.js';
import type { Prediction } from '../lib/classify.js';
import { modelFromWeights } from './model-source.js';
import { integerFlag, UsageError } from './train-commands.js';

export const predictUsage = `  predict <image|folder|glob>... --weights FILE|NAME [--arch A] [--topk K] [--batch-size B]
        top classes of each image. A FILE saved by resnet train (or model.save()) brings its
        architecture, classes and preprocessing; torchvision's: --arch resnet50 --weights DEFAULT`;

export const predictOptions = {
  weights: { type: 'string' },
  arch: { type: 'string' },
  topk: { type: 'string', default: '5' },
  'batch-size': { type: 'string', default: '16' },
} as const;

const hasGlob = (text: string) => /[*?[\]{}]/.test(text);
const isImage = (name: string) => imageExtensions.some((e) => name.toLowerCase().endsWith(e));

/** Files, folders (every image under them, sorted) and glob patterns to a list of image files. */
export async function imageFiles(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => null);
    if (info?.isFile()) out.push(input);
    else if (info?.isDirectory()) {
      const found = (await fg('**/*', { cwd: input, onlyFiles: true, followSymbolicLinks: true })).filter(isImage).sort();
      if (found.length === 0) throw new UsageError(`no image file (${imageExtensions.join(', ')}) in the folder '${input}'`);
      out.push(...found.map((f) => join(input, f)));
    } else if (hasGlob(input)) {
      const found = (await fg(input, { onlyFiles: true })).sort();
      if (found.length === 0) throw new UsageError(`no file matches '${input}'`);
      out.push(...found);
    } else throw new UsageError(`cannot find '${input}'`);
  }
  return out;
}


export async function predict(args: string[], json: boolean): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: predictOptions });
  if (positionals.length === 0) throw new UsageError('predict needs at least one image, folder or glob');
  if (!values.weights) throw new UsageError('predict needs --weights FILE (from resnet train --out) or --arch A --weights DEFAULT');
  const topk = integerFlag('topk', values.topk);
  const batchSize = integerFlag('batch-size', values['batch-size']);
  const files = await imageFiles(positionals);
  const model = await modelFromWeights(values.weights, values.arch);
  const results: Array<{ file: string; predictions?: Prediction[]; error?: { code: string; message: string } }> = [];
  try {
    if (model.config.inChannels !== 3) {
      throw new UsageError(`${model.arch} takes ${model.config.inChannels}-channel input; predict reads RGB images (the model must take 3 channels)`);
    }
    for (let i = 0; i < files.length; i += batchSize) {
      const chunk = files.slice(i, i + batchSize);
      try {
        const out = await model.classify(chunk, { topk });
        chunk.forEach((file, k) => results.push({ file, predictions: out[k]! }));
      } catch (error) {
        if (!(error instanceof ImageError)) throw error;
        // One unreadable image must not cost the others: classify this chunk one by one.
        for (const file of chunk) {
          try {
            results.push({ file, predictions: (await model.classify(file, { topk }))[0]! });
          } catch (single) {
            if (!(single instanceof ImageError)) throw single;
            results.push({ file, error: { code: single.code, message: single.message } });
          }
        }
      }
    }
  } finally {
    model.dispose();
  }
  const failed = results.filter((r) => r.error).length;
  if (json) console.log(JSON.stringify({ arch: model.arch, results }));
  else {
    for (const r of results) {
      if (r.error) console.log(`${r.file}: error: ${r.error.message}`);
      else console.log(`${r.file}: ${r.predictions!.map((p) => `${p.label} ${(100 * p.score).toFixed(1)}%`).join(', ')}`);
    }
  }
  if (failed > 0) {
    if (!json) console.error(`resnet: ${failed} of ${results.length} image(s) could not be read`);
    process.exitCode = 1;
  }
}
