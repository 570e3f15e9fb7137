// A package whose install script never ran (pnpm 10, bun, --ignore-scripts) has no addon: the import
// must say how to build it instead of listing the paths `bindings` tried.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));

test('importing the package without its built addon names the commands that build it', async (t) => {
  const app = await mkdtemp(join(tmpdir(), 'resnet-unbuilt-'));
  t.teardown(() => rm(app, { recursive: true, force: true }));
  // The sources and package.json, but no build/: what an install without scripts leaves.
  await cp(join(repo, 'lib'), join(app, 'lib'), { recursive: true });
  await cp(join(repo, 'types'), join(app, 'types'), { recursive: true });
  await cp(join(repo, 'package.json'), join(app, 'package.json'));
  await symlink(join(repo, 'node_modules'), join(app, 'node_modules'), 'dir');
  const r = spawnSync(process.execPath, ['--import=tsx', '-e', "await import('./lib/index.ts')"], { cwd: app, encoding: 'utf8' });
  t.not(r.status, 0);
  t.regex(r.stderr, /libtorch-resnet: the native addon is not built/);
  t.regex(r.stderr, /pnpm approve-builds/);
  t.regex(r.stderr, /npm rebuild libtorch-resnet/);
  t.regex(r.stderr, /trustedDependencies/);
});
