#!/usr/bin/env node
// Finds LibTorch for binding.gyp (node-gyp), in the same order as cmake/FindLibTorch.cmake:
//   1. LIBTORCH: an unpacked LibTorch (include/, include/torch/csrc/api/include, lib/)
//   2. Torch_DIR (.../share/cmake/Torch) or CMAKE_PREFIX_PATH entries with share/cmake/Torch
//   3. the LibTorch inside an installed PyTorch Python package ($PYTHON, python3, /usr/bin/python3)
//   4. the system's LibTorch (Debian/Ubuntu: apt-get install libtorch-dev)
// Usage: node scripts/find-libtorch.mjs --include-dirs | --lib-dir | --cuda | --onednn | --gloo | --jpeg
//   --include-dirs  the include dirs, space separated
//   --lib-dir       the directory holding libtorch/libtorch_cpu/libc10
//   --cuda          1 if that directory has libtorch_cuda, else 0
//   --onednn        1 if libtorch_cpu links a shared libdnnl and oneDNN's headers are installed
//                   (the oneDNN inference engine can be built, as in CMakeLists.txt), else 0
//   --gloo          1 if c10d's ProcessGroupGloo.hpp and Gloo's headers are there (distributed training)
//   --jpeg          1 if libjpeg-turbo's headers and library are installed (the streaming data sets'
//                   JPEG fast path, as in CMakeLists.txt), else 0
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const { env, platform, arch } = process;
const soExt = platform === 'darwin' ? 'dylib' : 'so';
const TORCH_H = 'torch/csrc/api/include/torch/torch.h';
const CONFIG = 'share/cmake/Torch/TorchConfig.cmake';

// A LibTorch at `prefix` (headers under prefix/include) whose libraries are in the first of
// `libDirs` that has libc10; null when either part is missing.
function probe(prefix, libDirs = [path.join(prefix, 'lib')]) {
  const include = path.join(prefix, 'include');
  const libDir = libDirs.find((dir) => existsSync(path.join(dir, `libc10.${soExt}`)));
  if (!existsSync(path.join(include, TORCH_H)) || !libDir) return null;
  // A system /usr/include is already searched; naming it with -I breaks #include_next in libstdc++.
  const systemInclude = include === '/usr/include' || include === '/usr/local/include';
  const includeDirs = [...(systemInclude ? [] : [include]), path.join(include, 'torch/csrc/api/include')];
  return { prefix, includeDirs, libDir };
}

function find() {
  // 1. LIBTORCH: when set it must be valid, as in CMake (no silent fallback to another LibTorch).
  if (env.LIBTORCH) {
    const found = probe(path.resolve(env.LIBTORCH));
    if (!found) fail(`LIBTORCH is set to '${env.LIBTORCH}' but no LibTorch (include/${TORCH_H}, lib/libc10.${soExt}) was found there.`);
    return found;
  }
  // 2. Torch_DIR is <prefix>/share/cmake/Torch (or, as in Debian, <prefix>/lib/<triplet>/cmake/Torch
  //    with the libraries two levels up); CMAKE_PREFIX_PATH lists prefixes.
  if (env.Torch_DIR && existsSync(path.join(env.Torch_DIR, 'TorchConfig.cmake'))) {
    const dir = path.resolve(env.Torch_DIR);
    const found = probe(path.resolve(dir, '../../..')) ?? probe(path.resolve(dir, '../../../..'), [path.resolve(dir, '../..')]);
    if (found) return found;
  }
  for (const entry of (env.CMAKE_PREFIX_PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const found = existsSync(path.join(entry, CONFIG)) && probe(path.resolve(entry));
    if (found) return found;
  }
  // 3. PyTorch: cmake_prefix_path is <site-packages>/torch/share/cmake; include/ and lib/ are in torch/.
  for (const python of [env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    try {
      const out = execFileSync(python, ['-c', 'import torch.utils;print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      const found = existsSync(path.join(out, 'Torch/TorchConfig.cmake')) && probe(path.resolve(out, '../..'));
      if (found) return found;
    } catch {
      // no such python, or no torch in it: try the next one
    }
  }
  // 4. The system: headers in /usr/include (or /usr/local/include), libraries in the multiarch dir.
  const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu' }[arch];
  for (const prefix of ['/usr', '/usr/local']) {
    const libDirs = [triplet && `${prefix}/lib/${triplet}`, `${prefix}/lib64`, `${prefix}/lib`].filter(Boolean);
    const found = probe(prefix, libDirs);
    if (found) return found;
  }
  fail(
    'LibTorch was not found. Provide it in one of these ways, then rebuild:\n' +
      '  1. LIBTORCH=/path/to/libtorch  (an unpacked LibTorch from pytorch.org, CPU or CUDA)\n' +
      '  2. Torch_DIR=/path/to/share/cmake/Torch or CMAKE_PREFIX_PATH=/path/to/libtorch\n' +
      '  3. a PyTorch Python package on python3 (pip install torch): its torch.utils.cmake_prefix_path is used\n' +
      '  4. the system\'s LibTorch, e.g. on Debian/Ubuntu: apt-get install libtorch-dev (or bash scripts/install-system-deps.sh)',
  );
}

// The oneDNN engine calls oneDNN directly, so it must be the very library LibTorch uses: only
// when libtorch_cpu links a shared libdnnl (Debian's does) and its headers are installed.
function onednnBuildable(libDir) {
  if (platform !== 'linux') return false;
  // oneDNN 2.x headers: the engine uses 2.x's API (3.x dropped the operation descriptors).
  const version = ['/usr/include', '/usr/local/include']
    .map((dir) => path.join(dir, 'oneapi/dnnl/dnnl_version.h'))
    .find((file) => existsSync(file));
  if (!version || !/#define DNNL_VERSION_MAJOR 2\b/.test(readFileSync(version, 'utf8'))) return false;
  try {
    const dynamic = execFileSync('readelf', ['-d', path.join(libDir, `libtorch_cpu.${soExt}`)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /\(NEEDED\).*\[libdnnl\.so\.2\]/.test(dynamic);
  } catch {
    return false;
  }
}

// libjpeg-turbo (not IJG's libjpeg: its jconfig.h defines LIBJPEG_TURBO_VERSION), headers and
// library, for the streaming data sets' JPEG decoder. Debian: libjpeg62-turbo-dev.
function jpegBuildable() {
  const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu' }[arch];
  const includeDirs = ['/usr/include', '/usr/local/include'];
  if (!includeDirs.some((dir) => existsSync(path.join(dir, 'jpeglib.h')))) return false;
  const jconfig = includeDirs.flatMap((dir) => [path.join(dir, 'jconfig.h'), ...(triplet ? [path.join(dir, triplet, 'jconfig.h')] : [])]).find((file) => existsSync(file));
  if (!jconfig || !/#define LIBJPEG_TURBO_VERSION\b/.test(readFileSync(jconfig, 'utf8'))) return false;
  const libDirs = ['/usr', '/usr/local'].flatMap((prefix) => [triplet && `${prefix}/lib/${triplet}`, `${prefix}/lib64`, `${prefix}/lib`]).filter(Boolean);
  return libDirs.some((dir) => existsSync(path.join(dir, `libjpeg.${soExt}`)));
}

function fail(message) {
  console.error(`libtorch-resnet: ${message}`);
  process.exit(1);
}

const { includeDirs, libDir } = find();
switch (process.argv[2]) {
  case '--include-dirs':
    console.log(includeDirs.join(' '));
    break;
  case '--lib-dir':
    console.log(libDir);
    break;
  case '--cuda':
    console.log(existsSync(path.join(libDir, `libtorch_cuda.${soExt}`)) ? 1 : 0);
    break;
  case '--onednn':
    console.log(onednnBuildable(libDir) ? 1 : 0);
    break;
  case '--gloo': {
    // As CMakeLists.txt: Gloo's headers in LibTorch's include dirs (official builds) or the system's.
    const dirs = [...includeDirs, '/usr/include', '/usr/local/include'];
    const has = (file) => dirs.some((dir) => existsSync(path.join(dir, file)));
    console.log(has('gloo/context.h') && has('torch/csrc/distributed/c10d/ProcessGroupGloo.hpp') ? 1 : 0);
    break;
  }
  case '--jpeg':
    console.log(jpegBuildable() ? 1 : 0);
    break;
  default:
    fail('usage: node scripts/find-libtorch.mjs --include-dirs | --lib-dir | --cuda | --onednn | --gloo | --jpeg');
}
