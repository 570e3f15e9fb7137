// The only module that loads the compiled addon. It is located with the `bindings` package,
// from the package root (the nearest folder above this file with a package.json: lib/ when run
// from source, dist/lib/ when run from the build), in build/Release, build/Debug, ...
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from '../types/native.js';
import { defaultThreads } from './threads.js';

// LibTorch's BLAS here is OpenBLAS, whose own thread pool (a) competes with LibTorch's OpenMP
// threads for the same cores and (b) deadlocks in its fork() handler when several threads of the
// process spawn child processes at once (seen with worker_threads starting tools). LibTorch runs
// convolutions through oneDNN and parallelises with OpenMP, so OpenBLAS's pool buys nothing:
// keep it to the calling thread, unless the user chose otherwise. Read once, when OpenBLAS loads.
process.env.OPENBLAS_NUM_THREADS ??= '1';

// GNU OpenMP's threads spin 300,000 times at each barrier before they sleep. When another process
// takes one of the cores, a thread spins while the one it waits for is not running: training kept
// 29-33% of its quiet throughput beside one busy process (the fair share is 50%). A spin count of
// 1,000 keeps 42% (forwards 50%) for 4-7% of quiet training throughput (BENCHMARKS.md,
// "Sharing the cores"); OMP_WAIT_POLICY=PASSIVE keeps 53% but costs 14-20%. A user's own
// GOMP_SPINCOUNT or OMP_WAIT_POLICY wins. Read once, when libgomp loads with LibTorch below.
if (process.env.GOMP_SPINCOUNT === undefined && process.env.OMP_WAIT_POLICY === undefined) process.env.GOMP_SPINCOUNT = '1000';

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

/**
 * The addon, or an error that says how to build it. Package managers that skip install scripts
 * (pnpm 10 and bun by default, npm with ignore-scripts) leave it unbuilt, and `bindings` alone
 * answers with a list of a dozen paths it tried.
 */
function loadAddon(): NativeBinding {
  try {
    return bindings({ bindings: 'libtorch_resnet', module_root: packageRoot }) as NativeBinding;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    if (!/Could not locate the bindings file/.test(text)) throw error;
    throw new Error(
      `libtorch-resnet: the native addon is not built in '${packageRoot}' (its install script did not run).\n` +
        '  npm:  npm rebuild libtorch-resnet            (after installing with --ignore-scripts)\n' +
        '  pnpm: pnpm approve-builds, then pnpm rebuild libtorch-resnet\n' +
        '  bun:  add "libtorch-resnet" to "trustedDependencies" in package.json, then bun pm trust libtorch-resnet\n' +
        'The build needs CMake, a C++17 compiler and LibTorch (README, "Installing").',
      { cause: error },
    );
  }
}

export const native = loadAddon();

// Before any setNumThreads(), the addon answers the physical cores it may run on; OMP_NUM_THREADS
// and a cgroup CPU quota lower that (lib/threads.ts). Once per process: the count is the
// process's, and a worker thread loading the addon later (the streaming JPEG path) must not undo
// a setNumThreads() the application made. Worker threads start with a copy of the environment,
// child processes too: the marker holds the pid, so a child applies its own default.
const appliedMarker = 'LIBTORCH_RESNET_THREADS_APPLIED';
if (process.env[appliedMarker] !== String(process.pid)) {
  native.setNumThreads(defaultThreads(native.getNumThreads()).threads);
  process.env[appliedMarker] = String(process.pid);
}

export type {
  NativeBinding,
  NativeEvalResult,
  NativeJpegInfo,
  NativeJpegTransform,
  NativeModel,
  NativeProcessGroup,
  NativeProcessGroupOptions,
  NativeSpec,
  NativeStepResult,
  NativeTensorIn,
  NativeTensorOut,
  NativeTrainOptions,
} from '../types/native.js';
