// Every command of the resnet command line: its usage lines, its options (the parseArgs table the
// command parses with, so that a test can check help, README and code against each other) and
// the function that runs it.
import type { ParseArgsConfig } from 'node:util';
import { curvesUsage, experiment, experimentOptions, plot, plotOptions } from './curves-commands.js';
import { predict, predictOptions, predictUsage } from './predict-command.js';
import { serve, serveOptions, serveUsage } from './serve-command.js';
import { evalCommand, evalOptions, train, trainOptions, trainUsage } from './train-commands.js';
import { convert, convertOptions, convertUsage, download, downloadOptions, downloadUsage, info, infoOptions, infoUsage } from './weights-commands.js';

export interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(args: string[], json: boolean): Promise<void>;
}

export const commands: Record<string, Command> = {
  convert: { usage: convertUsage, options: convertOptions, run: convert },
  download: { usage: downloadUsage, options: downloadOptions, run: download },
  info: { usage: infoUsage, options: infoOptions, run: info },
  train: { usage: trainUsage, options: trainOptions, run: train },
  eval: { usage: trainUsage, options: evalOptions, run: evalCommand },
  predict: { usage: predictUsage, options: predictOptions, run: predict },
  plot: { usage: curvesUsage, options: plotOptions, run: plot },
  experiment: { usage: curvesUsage, options: experimentOptions, run: experiment },
  serve: { usage: serveUsage, options: serveOptions, run: serve },
};

/** The usage text of `resnet --help`, each command's lines once. */
export const usageLines = [convertUsage, downloadUsage, infoUsage, trainUsage, predictUsage, curvesUsage, serveUsage].join('\n');
