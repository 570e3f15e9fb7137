#!/usr/bin/env bash
# Run HERE (the development machine, which has Node and node_modules), before the GPU run:
#   bash scripts/gpu-check/prepare.sh
# It fills .device/ (git-ignored), the one path the device tool must carry, with what
# scripts/gpu-check.sh needs on a GPU machine that has CUDA, CMake, Python and PyTorch but no
# Node.js, no npm and no network:
#   .device/node.xz                    this machine's node binary, xz-compressed (../shared/device/pack-node.sh)
#   .device/bundle/package.json        the package root marker ("type": "module"; bindings' module_root)
#   .device/bundle/dist/lib/**.js      the compiled JavaScript (npm run build:ts), without maps and .d.ts
#   .device/bundle/node_modules/...    only what dist/lib/builders.js, tensor.js, runtime.js and
#                                      weights/* import at load time: bindings and its dependencies
#   .device/headers/node-api/          Node-API C headers (node_api.h ...) = cmake-js's CMAKE_JS_INC
#   .device/headers/node-addon-api/    napi.h and friends (the C++ wrapper), package.json, index.js
# Then it checks, in a scratch copy with ONLY those node_modules, that the modules load and that a
# tiny model runs (with this machine's addon from build/Release, when there is one), and prints
# the carry list and the sizes.
#
# Options: --skip-ts (reuse the existing dist/), --repack-node (re-run pack-node.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SKIP_TS=0
REPACK=0
for arg in "$@"; do
  case "$arg" in
    --skip-ts) SKIP_TS=1 ;;
    --repack-node) REPACK=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "prepare.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

command -v node >/dev/null || { echo "prepare.sh: node is needed here (it is packed for the GPU machine)" >&2; exit 1; }
[ -d node_modules/bindings ] || { echo "prepare.sh: run npm ci first (node_modules/bindings is missing)" >&2; exit 1; }
git check-ignore -q .device/x || { echo "prepare.sh: .device/ is not git-ignored here; refusing to fill it" >&2; exit 1; }

# 1. Node itself, with the shared packer (it also copies node-api-headers to .device/node-api-include).
mkdir -p .device
if [ "$REPACK" = 1 ] || [ ! -s .device/node.xz ]; then
  PACKER="${PACK_NODE:-$ROOT/../shared/device/pack-node.sh}"
  if [ -f "$PACKER" ]; then
    echo "== packing node with $PACKER"
    bash "$PACKER" >/dev/null
  else
    echo "== $PACKER not found: compressing $(command -v node) with xz"
    xz -T2 -6 -c "$(command -v node)" > .device/node.xz
  fi
else
  echo "== .device/node.xz is there ($(du -h .device/node.xz | cut -f1)); --repack-node to redo it"
fi
NODE_VERSION="$(node --version)"

# 2. The compiled JavaScript.
if [ "$SKIP_TS" = 0 ]; then
  echo "== npm run build:ts"
  npm run --silent build:ts
fi
[ -f dist/lib/builders.js ] || { echo "prepare.sh: dist/lib/builders.js is missing (npm run build:ts)" >&2; exit 1; }

rm -rf .device/bundle .device/headers
mkdir -p .device/bundle .device/headers
cp package.json .device/bundle/
tar -C "$ROOT" --exclude='*.map' --exclude='*.d.ts' -cf - dist/lib | tar -C .device/bundle -xf -

# 3. Runtime node_modules: bindings and the closure of its dependencies (read from package.json).
MODULES="$(node -e '
  const { readFileSync } = require("node:fs");
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep);
  };
  for (const name of process.argv.slice(1)) visit(name);
  console.log([...seen].join(" "));
' bindings)"
mkdir -p .device/bundle/node_modules
for m in $MODULES; do
  mkdir -p ".device/bundle/node_modules/$(dirname "$m")"
  cp -r "node_modules/$m" ".device/bundle/node_modules/$m"
done

# 4. Build-time headers: what cmake-js would pass as CMAKE_JS_INC.
NODE_API_INC="$(node -p "require('node-api-headers').include_dir" 2>/dev/null || true)"
[ -n "$NODE_API_INC" ] && [ -f "$NODE_API_INC/node_api.h" ] || NODE_API_INC=.device/node-api-include
[ -f "$NODE_API_INC/node_api.h" ] || NODE_API_INC=/usr/include/node
[ -f "$NODE_API_INC/node_api.h" ] || { echo "prepare.sh: no node_api.h found (npm ci installs node-api-headers)" >&2; exit 1; }
cp -r "$NODE_API_INC" .device/headers/node-api
ADDON_API_DIR="$(node -p "require('node-addon-api').include_dir")"
mkdir -p .device/headers/node-addon-api
# index.js too: with NODE_PATH=.device/headers, CMakeLists.txt's `node -p "require('node-addon-api').include_dir"` works there
cp "$ADDON_API_DIR"/*.h "$ADDON_API_DIR/package.json" "$ADDON_API_DIR/index.js" .device/headers/node-addon-api/

# 5. Does the bundle load with only those modules? A scratch package root with the bundle, the
#    registry (read from lib/weights/ when dist/ is used) and this machine's addon if built.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-prepare.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
cp -r .device/bundle/. "$SCRATCH/"
mkdir -p "$SCRATCH/lib/weights"
cp lib/weights/registry.json "$SCRATCH/lib/weights/"
HAVE_ADDON=0
if [ -f build/Release/libtorch_resnet.node ]; then
  mkdir -p "$SCRATCH/build/Release"
  cp build/Release/libtorch_resnet.node "$SCRATCH/build/Release/"
  HAVE_ADDON=1
fi
echo "== load check in $SCRATCH (node_modules: $MODULES; addon: $([ $HAVE_ADDON = 1 ] && echo build/Release of this machine || echo none))"
(
  cd "$SCRATCH"
  unset NODE_PATH
  # Nothing above the scratch folder may provide node_modules.
  for d in "$(dirname "$SCRATCH")" /; do [ ! -e "$d/node_modules" ] || { echo "prepare.sh: $d/node_modules would leak into the check" >&2; exit 1; }; done
  if [ "$HAVE_ADDON" = 1 ]; then
    node --input-type=module -e "
      const b = await import('./dist/lib/builders.js');
      const { Tensor } = await import('./dist/lib/tensor.js');
      const rt = await import('./dist/lib/runtime.js');
      await import('./dist/lib/weights/files.js');
      await import('./dist/lib/weights/safetensors.js');
      await import('./dist/lib/weights/pth.js');
      const m = await b.resnet18({ numClasses: 3, seed: 1 });
      const y = await m.forward(new Tensor(new Float32Array(2 * 3 * 32 * 32).fill(0.5), [2, 3, 32, 32]));
      m.dispose();
      console.log('   builders.js, tensor.js, runtime.js, weights/* load; LibTorch ' + rt.libtorchVersion() + '; forward gives [' + y.shape + ']');
    "
  else
    # Without an addon only the module graph can be checked (native.js loads the addon).
    node --input-type=module -e "
      try { await import('./dist/lib/builders.js'); } catch (e) {
        if (!/Could not locate the bindings file/.test(String(e && e.message))) throw e;
        console.log('   module graph loads up to the addon (no build/Release here)');
      }
    "
  fi
)

# 6. Sizes and the carry list.
TREE_BYTES="$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)"
DEVICE_BYTES="$(du -sb .device | cut -f1)"
TOTAL=$((TREE_BYTES + DEVICE_BYTES))
LIMIT=$((64 * 1024 * 1024))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "== sizes"
for p in .device/node.xz .device/bundle/dist .device/bundle/node_modules .device/headers; do du -sh "$p"; done | sed 's/^/   /'
echo "   .device total: $(mib "$DEVICE_BYTES"); working tree (tracked + untracked, not ignored): $(mib "$TREE_BYTES")"
echo "   together: $(mib "$TOTAL") of the 64 MiB the device tool carries"
[ "$TOTAL" -lt "$LIMIT" ] || { echo "prepare.sh: over 64 MiB" >&2; exit 1; }
cat <<TXT
== ready (node $NODE_VERSION packed). On the device:
   run(command: "bash scripts/gpu-check.sh \"\$OUT\"", carry: [".device"], timeout_s: 600)
TXT
