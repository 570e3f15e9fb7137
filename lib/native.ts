// The only module that loads the compiled addon. It is located with the `bindings` package,
// from the package root (the nearest folder above this file with a package.json: lib/ when run
// from source, dist/lib/ when run from the build), in build/Release, build/Debug, ...
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from '../types/native.js';

const require = createRequire(import.meta.url);
const bindings = require('bindings') as (options: { bindings: string; module_root: string }) => unknown;

function findPackageRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return start;
    dir = parent;
  }
  return dir;
}

const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

export const native = bindings({ bindings: 'libtorch_resnet', module_root: packageRoot }) as NativeBinding;

export type { NativeBinding, NativeModel, NativeSpec, NativeTensorIn, NativeTensorOut } from '../types/native.js';
