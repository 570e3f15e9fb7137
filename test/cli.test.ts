// The resnet command line's own surface: per-command help, --version, unknown commands.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const cli = (args: string[]) => spawnSync(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args], { encoding: 'utf8' });
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

test('resnet <command> --help prints that command\'s options and exits 0', (t) => {
  for (const [command, mention] of [['train', '--run-dir DIR'], ['plot', '-o FILE.svg'], ['experiment', 'degradation'], ['serve', '--max-pixels'], ['convert', '--strip-module']] as const) {
    const r = cli([command, '--help']);
    t.is(r.status, 0, `${command}: ${r.stderr}`);
    t.true(r.stdout.startsWith(`Usage: resnet ${command} [options]`), command);
    t.true(r.stdout.includes(mention), `${command} help mentions ${mention}`);
  }
});

test('resnet --version prints the package version', (t) => {
  const r = cli(['--version']);
  t.is(r.status, 0);
  t.is(r.stdout.trim(), version);
  t.deepEqual(JSON.parse(cli(['--version', '--json']).stdout), { version });
});
