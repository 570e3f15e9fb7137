// The resnet command line's own surface: per-command help, --version, unknown commands.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const cli = (args: string[]) => spawnSync(process.execPath, ['--import=tsx', 'bin/resnet.ts', ...args], { encoding: 'utf8' });
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

test('resnet <command> --help prints that command\'s options and exits 0', (t) => {
  for (const [command, mention] of [['train', '--run-dir DIR'], ['plot', '--out FILE.svg'], ['predict', '--topk K'], ['experiment', 'degradation'], ['serve', '--max-pixels'], ['convert', '--strip-module']] as const) {
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

test('resnet info lists the weights entries with their accuracy and recipe', (t) => {
  const r = cli(['info', 'resnet50']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^resnet50: 25,557,032 parameters \(1000 classes\)$/m);
  t.regex(r.stdout, /^ {2}IMAGENET1K_V2: top-1 80\.858%, resize 232, crop 224, https:\/\/download\.pytorch\.org\/models\/resnet50-11ad3fa6\.pth$/m);
  t.regex(r.stdout, /^ {2}DEFAULT \(= IMAGENET1K_V2\)$/m);
  const cifar = JSON.parse(cli(['info', 'resnet20', '--num-classes', '10', '--json']).stdout) as { numParameters: number; weights: string[] };
  t.is(cifar.numParameters, 269722); // the README's table
  t.deepEqual(cifar.weights, []);
});

// require('libtorch-resnet') used to fail with ERR_PACKAGE_PATH_NOT_EXPORTED: the exports had an
// 'import' condition only. With a 'default' one, Node's require(esm) (20.19+, 22.12+) loads it;
// older Nodes say ERR_REQUIRE_ESM, which names the way out (import()).
test('require() resolves the package and its /serve entry', async (t) => {
  const { mkdtempSync, mkdirSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const app = mkdtempSync(join(tmpdir(), 'require-'));
  t.teardown(() => rmSync(app, { recursive: true, force: true }));
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(resolve('.'), join(app, 'node_modules', 'libtorch-resnet'));
  const probe = "try { const m = require('libtorch-resnet'); const s = require('libtorch-resnet/serve'); console.log(typeof m.resnet18, typeof s.createServer, require('libtorch-resnet/package.json').name) } catch (e) { console.log(e.code) }";
  const r = spawnSync(process.execPath, ['--no-warnings', '-e', probe], { cwd: app, encoding: 'utf8' });
  const requireEsm = (process.features as { require_module?: boolean }).require_module === true;
  t.is(r.stdout.trim(), requireEsm ? 'function function libtorch-resnet' : 'ERR_REQUIRE_ESM', r.stderr);
});
