#!/usr/bin/env node
// The `resnet` command line. Exit codes: 0 success, 1 the work failed (a ResNetError or I/O),
// 2 the command line itself was wrong. --json prints one JSON object on stdout for scripts.
import { readFileSync } from 'node:fs';
import { ownEntry } from '../lib/validate.js';
import { architectureNames } from '../lib/architectures.js';
import { commands, usageLines } from './commands.js';
import { UsageError } from './train-commands.js';

/** The package's version, from the package.json above this file (bin/ or dist/bin/). */
function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'libtorch-resnet' && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

const usage = `Usage: resnet <command> [options]

Commands:
${usageLines}

Options:
  --json       machine-readable output on stdout
  -h, --help   this text; after a command, that command's options
  --version    the package's version

Architectures: ${architectureNames.join(', ')}`;

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  if (args.length === 0 || args[0] === '-h' || args[0] === '--help') {
    console.log(usage);
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === '--version' || args[0] === '-v') {
    console.log(json ? JSON.stringify({ version: packageVersion() }) : packageVersion());
    return 0;
  }
  const command = ownEntry(commands, args[0]);
  if (command !== undefined && args.slice(1).some((a) => a === '--help' || a === '-h')) {
    console.log(`Usage: resnet ${args[0]} [options]\n\n${command.usage}`);
    return 0;
  }
  try {
    if (!command) throw new UsageError(`unknown command '${args[0]}'`);
    await command.run(args.slice(1), json);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    const usageError = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const message = (error as Error).message;
    if (json) console.log(JSON.stringify({ error: { code: (error as { code?: string }).code ?? 'ERR_USAGE', message } }));
    else console.error(`resnet: ${message}${usageError ? `\n\n${usage}` : ''}`);
    return usageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
