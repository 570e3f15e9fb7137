#!/usr/bin/env bash
# The CUDA check of libtorch-resnet, for a GPU machine that has CUDA, CMake, a C++ compiler and
# Python with a CUDA build of PyTorch, but no Node.js and no network (docs/GPU.md).
#
#   bash scripts/gpu-check.sh [--dry-run] [OUT_DIR]        (OUT_DIR defaults to $OUT)
#
# Before, on the development machine: bash scripts/gpu-check/prepare.sh (fills .device/, the one
# path to carry). Steps, each logged to OUT_DIR/logs/<step>.log and listed in OUT_DIR/steps.tsv:
#   node          unpack .device/node.xz, put it first on PATH
#   python        find a python3 whose torch works (on CUDA: torch.cuda.is_available())
#   stage         a package root in the work folder: .device/bundle (package.json, dist/lib,
#                 bindings) + lib/weights/registry.json; the addon is built into its build/Release
#   build         cmake directly (no cmake-js): Release, all cores, against the Python package's
#                 LibTorch (CMAKE_PREFIX_PATH = torch.utils.cmake_prefix_path); CUDA build required
#   env           load the addon: LibTorch version, cudaAvailable(), cudaDeviceCount()
#   fixtures      scripts/gpu-check/fixtures.py: weights, input and PyTorch's logits, on this GPU
#   parity        scripts/gpu-check/parity.mjs with NVIDIA_TF32_OVERRIDE=0 (float32, bfloat16 and
#                 float16 autocast, contiguous and channels_last, .pth and .safetensors)
#   parity-tf32   float32 with LibTorch's default math mode (TF32 allowed in cuDNN): reported only
#   train-parity  scripts/gpu-check/train_fixtures.py (5 SGD steps of PyTorch: float32 with TF32 off,
#                 bfloat16 and float16 AMP) then train-parity.mjs (ours, same start and batches)
#   api           scripts/gpu-check/api-check.mjs: to(device) after creation and back, features(),
#                 train-mode forward, AdamW, evaluate(), save/load from the device, two models at once
#   bench-torch   scripts/gpu-check/bench_torch.py: Python PyTorch eager, same rows
#   bench-ours    scripts/gpu-check/bench.mjs, one process per row (with the event loop's delay)
#   bench-compile bench_torch.py --compile: torch.compile on the plan's `compile` rows, as time allows
#   report        OUT_DIR/report.md (also printed) and OUT_DIR/results.json
#   pack          with GPU_CHECK_PACK=1 (the default when OUT is set, as on the device tool, which
#                 returns at most 8 files): everything but report.md and results.json goes into
#                 OUT_DIR/gpu-check-files.tar.gz
# Exit status 0 when no step failed.
#
# --dry-run (or DRY_RUN=1): the same flow on a CPU machine: the system LibTorch (Debian's
# libtorch-dev) instead of the Python package's, device 'cpu', tiny batches, float32 and bfloat16,
# no nvidia-smi. Environment knobs: GPU_CHECK_WORK (work folder, default build-gpu-check/ in the
# repository, git-ignored, kept between runs so a rerun rebuilds incrementally), GPU_CHECK_BUDGET
# (seconds for the whole run, default 560), PYTHON (the python to use), GPU_CHECK_JOBS (build
# jobs, default nproc), GPU_CHECK_CUDA_ARCH (default 90, only for CMake's CUDA compiler test),
# GPU_CHECK_LIBTORCH=python|system (default: python on CUDA, system in a dry run),
# GPU_CHECK_NO_TORCHVISION=1 (Python side uses its stand-in ResNet, not torchvision),
# GPU_CHECK_KEEP_FIXTURES=1 (keep the ~600 MB of fixture weights), GPU_CHECK_STEPS (a
# comma-separated subset of build, parity, parity-tf32, train-parity, api, bench-torch, bench-ours,
# bench-compile, for reruns on a
# warm machine: node, python, stage and env always run, fixtures whenever a parity step does).
set -uo pipefail
set -m  # each step runs in its own process group, so that a timeout can stop all of it

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/gpu-check"
DRY="${DRY_RUN:-0}"
OUT_DIR=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "gpu-check.sh: unknown option $arg" >&2; exit 2 ;;
    *) OUT_DIR="$arg" ;;
  esac
done
[ "$DRY" = 1 ] && MODE=dry || MODE=gpu
WORK="${GPU_CHECK_WORK:-$ROOT/build-gpu-check}"
OUT_DIR="${OUT_DIR:-${OUT:-$WORK/out-$MODE}}"
mkdir -p "$WORK" "$OUT_DIR/logs" "$OUT_DIR/bench-ours" "$OUT_DIR/fixtures"
WORK="$(cd "$WORK" && pwd)"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
PKG="$WORK/pkg-$MODE"
FIX="$WORK/fixtures-$MODE"
PLAN="$HERE/plan.json"
STEPS="$OUT_DIR/steps.tsv"
: > "$STEPS"
for f in env build parity-strict parity-tf32 train-parity api bench-torch bench-compile results; do rm -f "$OUT_DIR/$f.json"; done
rm -f "$OUT_DIR"/bench-ours/*.json "$OUT_DIR/report.md" "$OUT_DIR/fixtures/manifest.json"
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET:-560}"
JOBS="${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}"
FAILED=0
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

say() { printf '[%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
# node, python, stage and env always run (seconds, and later steps need them); fixtures runs when
# a parity step is wanted.
wanted() {
  [ -z "${GPU_CHECK_STEPS:-}" ] && return 0
  case "$1" in node|python|stage|env) return 0 ;; esac
  [ "$1" = fixtures ] && [[ ",$GPU_CHECK_STEPS," == *",parity"* ]] && return 0
  [[ ",$GPU_CHECK_STEPS," == *",$1,"* ]]
}
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$STEPS"; }

# run_step NAME DEFAULT_TIMEOUT FUNCTION: runs FUNCTION with its output in logs/NAME.log, under a
# timeout that also respects the whole run's budget; records ok / FAIL / SKIP.
run_step() {
  local name="$1" limit="$2" fn="$3" t0 rc status note=""
  if ! wanted "$name"; then record "$name" SKIP 0 "not in GPU_CHECK_STEPS"; return 0; fi
  local left=$(( BUDGET - ($(date +%s) - START) - 20 ))
  if [ "$left" -lt 15 ]; then
    record "$name" SKIP 0 "out of time (budget ${BUDGET} s)"; say "$name: skipped, out of time"; FAILED=1; return 1
  fi
  [ "$limit" -gt "$left" ] && limit="$left"
  say "$name (limit ${limit} s) ..."
  t0=$(date +%s)
  STEP_NOTE="$OUT_DIR/logs/$name.note"
  rm -f "$STEP_NOTE"
  STEP_DEADLINE=$(( t0 + limit ))
  ( "$fn" ) > "$OUT_DIR/logs/$name.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$STEP_DEADLINE" ]; then
      kill -TERM -- "-$pid" 2>/dev/null; sleep 3; kill -KILL -- "-$pid" 2>/dev/null
      echo "gpu-check.sh: step $name stopped after ${limit} s" >> "$OUT_DIR/logs/$name.log"
      note "stopped after ${limit} s"
      break
    fi
    sleep 1
  done
  wait "$pid"; rc=$?
  [ -f "$STEP_NOTE" ] && note="$(tr '\n\t' '  ' < "$STEP_NOTE" | sed 's/ *$//')"
  if [ "$rc" = 0 ]; then status=ok; else status=FAIL; FAILED=1; fi
  if [ "$status" = FAIL ] && [ -z "$note" ]; then note="$(grep -v '^[[:space:]]*$' "$OUT_DIR/logs/$name.log" | tail -n 1 | tr '\t|' '  ' | cut -c1-160)"; fi
  record "$name" "$status" "$(( $(date +%s) - t0 ))" "$note"
  say "$name: $status ($(( $(date +%s) - t0 )) s)${note:+ - $note}"
  if [ "$status" = FAIL ]; then
    echo "----- last lines of logs/$name.log -----"; tail -n 25 "$OUT_DIR/logs/$name.log"; echo "-----"
  fi
  return "$rc"
}
note() { echo "$*" >> "$STEP_NOTE"; }

say "libtorch-resnet GPU check, mode $MODE; out: $OUT_DIR; work: $WORK"

# ---- node ------------------------------------------------------------------------------------
step_node() {
  mkdir -p "$WORK/bin"
  if [ -s "$ROOT/.device/node.xz" ]; then
    if [ ! -x "$WORK/bin/node" ] || [ "$ROOT/.device/node.xz" -nt "$WORK/bin/node" ]; then
      if command -v xz >/dev/null; then
        xz -dc "$ROOT/.device/node.xz" > "$WORK/bin/node.tmp"
      else
        python3 -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],'wb'))" "$ROOT/.device/node.xz" "$WORK/bin/node.tmp"
      fi
      chmod +x "$WORK/bin/node.tmp" && mv "$WORK/bin/node.tmp" "$WORK/bin/node"
    fi
    note "unpacked .device/node.xz"
  elif [ "$MODE" = dry ] && command -v node >/dev/null; then
    ln -sf "$(command -v node)" "$WORK/bin/node"
    note "no .device/node.xz: using $(command -v node)"
  else
    echo "no .device/node.xz: run bash scripts/gpu-check/prepare.sh on the development machine and carry .device"; return 1
  fi
  "$WORK/bin/node" --version
}
if ! run_step node 60 step_node; then
  node_ok=0
else
  node_ok=1
fi
export PATH="$WORK/bin:$PATH"

# ---- python ----------------------------------------------------------------------------------
PY=""
step_python() {
  local c
  for c in ${PYTHON:-} python3 /usr/bin/python3; do
    command -v "$c" >/dev/null 2>&1 || continue
    if [ "$MODE" = gpu ]; then
      "$c" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || continue
    else
      "$c" -c 'import torch' 2>/dev/null || continue
    fi
    echo "$c" > "$WORK/python"
    "$c" - <<'PY'
import sys, torch
print("python", sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cmake prefix", torch.utils.cmake_prefix_path)
try:
    import torchvision; print("torchvision", torchvision.__version__)
except Exception as e:
    print("torchvision: not importable:", e)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version())
PY
    note "$("$c" -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)')"
    return 0
  done
  echo "no python3 with a working torch$([ "$MODE" = gpu ] && echo ' and CUDA') found (tried: ${PYTHON:-} python3 /usr/bin/python3)"
  return 1
}
rm -f "$WORK/python"
run_step python 60 step_python && PY="$(cat "$WORK/python")"

# ---- stage -----------------------------------------------------------------------------------
step_stage() {
  local b="$ROOT/.device/bundle"
  [ -f "$b/dist/lib/builders.js" ] || { echo "no .device/bundle: run bash scripts/gpu-check/prepare.sh here first"; return 1; }
  mkdir -p "$PKG"
  rm -rf "$PKG/dist" "$PKG/node_modules" "$PKG/lib" "$PKG/package.json"
  cp -r "$b/package.json" "$b/dist" "$b/node_modules" "$PKG/"
  mkdir -p "$PKG/lib/weights" "$PKG/build/Release"
  cp "$ROOT/lib/weights/registry.json" "$PKG/lib/weights/"
  ls "$PKG" "$PKG/node_modules"
  note "node_modules: $(ls "$PKG/node_modules" | tr '\n' ' ')"
}
run_step stage 30 step_stage

# ---- build -----------------------------------------------------------------------------------
step_build() {
  local napi="$ROOT/.device/headers/node-api" addon_api="$ROOT/.device/headers/node-addon-api"
  if [ ! -f "$napi/node_api.h" ]; then
    for d in "$ROOT/.device/node-api-include" "$ROOT/node_modules/node-api-headers/include" /usr/include/node; do
      [ -f "$d/node_api.h" ] && { napi="$d"; break; }
    done
  fi
  [ -f "$addon_api/napi.h" ] || addon_api="$ROOT/node_modules/node-addon-api"
  [ -f "$napi/node_api.h" ] && [ -f "$addon_api/napi.h" ] || { echo "Node-API headers not found (run prepare.sh)"; return 1; }

  local libtorch="${GPU_CHECK_LIBTORCH:-}"
  [ -n "$libtorch" ] || { [ "$MODE" = gpu ] && libtorch=python || libtorch=system; }
  local bdir="$WORK/cmake-$MODE-$libtorch" args=() gen="Unix Makefiles"
  command -v ninja >/dev/null && gen=Ninja
  if [ -f "$bdir/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=$gen\$" "$bdir/CMakeCache.txt"; then rm -rf "$bdir"; fi
  args+=(-S "$ROOT" -B "$bdir" -G "$gen" -DCMAKE_BUILD_TYPE=Release
         "-DCMAKE_JS_INC=$napi;$addon_api" "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$PKG/build/Release")
  if [ "$libtorch" = python ]; then
    [ -n "$PY" ] || { echo "no python with torch: cannot locate LibTorch"; return 1; }
    local prefix
    prefix="$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)')" || return 1
    export CMAKE_PREFIX_PATH="$prefix"
    args+=("-DCMAKE_PREFIX_PATH=$prefix")
  fi
  if [ "$MODE" = gpu ]; then
    # PyTorch's Caffe2 config enables the CUDA language: CMake must find nvcc, and its compiler
    # test must target an architecture CUDA 13 still supports.
    if ! command -v nvcc >/dev/null; then
      for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && { export PATH="$PATH:$d"; break; }; done
    fi
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # skips PyTorch's GPU-probing step
    local cuda_root="" r
    for r in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda \
             "$(command -v nvcc >/dev/null && dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"; do
      [ -n "$r" ] && [ -x "$r/bin/nvcc" ] && [ -f "$r/include/cuda_runtime.h" ] && { cuda_root="$r"; break; }
    done
    args+=("-DCMAKE_CUDA_ARCHITECTURES=${GPU_CHECK_CUDA_ARCH:-90}")
    if [ -n "$cuda_root" ]; then
      export CUDACXX="${CUDACXX:-$cuda_root/bin/nvcc}"
      args+=("-DCUDAToolkit_ROOT=$cuda_root")
      echo "CUDA toolkit: $cuda_root ($("$CUDACXX" --version | tail -n 1))"
    elif command -v nvcc >/dev/null; then
      export CUDACXX="${CUDACXX:-$(command -v nvcc)}"
      echo "CUDA toolkit root not found; nvcc: $CUDACXX"
    else
      echo "warning: nvcc not found; PyTorch's CMake config may fail to enable CUDA"
    fi
  fi
  if [ "$libtorch" = system ]; then
    local sys_torch
    sys_torch="$(ls -d /usr/lib/*/cmake/Torch 2>/dev/null | head -n 1)"
    [ -n "$sys_torch" ] && args+=("-DTorch_DIR=$sys_torch")
  fi
  local cxx20=0
  if [ -n "${GPU_CHECK_CXX20:-}" ]; then cxx20=1; fi
  configure_and_build() {
    local extra=()
    [ "$cxx20" = 1 ] && extra+=("-DCMAKE_CXX_COMPILER_LAUNCHER=sh;$HERE/cxx20.sh")
    [ "$cxx20" = 0 ] && extra+=("-UCMAKE_CXX_COMPILER_LAUNCHER")
    echo "+ cmake ${args[*]} ${extra[*]}"
    # NODE_PATH: CMakeLists.txt asks node for require('node-addon-api').include_dir; without
    # node_modules in the repository that resolves to the bundled copy.
    NODE_PATH="$(dirname "$addon_api")${NODE_PATH:+:$NODE_PATH}" cmake "${args[@]}" "${extra[@]}" > "$WORK/configure.log" 2>&1
    local rc=$?
    cat "$WORK/configure.log"
    [ "$rc" = 0 ] || return 1
    if [ "$MODE" = gpu ] && ! grep -q 'CUDA build (torch_cuda linked)' "$WORK/configure.log"; then
      echo "configure found a LibTorch without CUDA: not compiling"; return 1
    fi
    echo "+ cmake --build $bdir --parallel $JOBS"
    cmake --build "$bdir" --parallel "$JOBS" > "$WORK/compile.log" 2>&1
    rc=$?
    cat "$WORK/compile.log"
    return "$rc"
  }
  local t0=$(date +%s) rc
  rm -f "$PKG/build/Release/libtorch_resnet.node"  # never test a stale addon
  configure_and_build; rc=$?
  if [ "$rc" != 0 ] && [ "$cxx20" = 0 ] && grep -qiE 'C\+\+20|c\+\+2a|requires .*20' "$WORK/compile.log" 2>/dev/null; then
    echo "== the LibTorch headers seem to need C++20: rebuilding with $HERE/cxx20.sh as the compiler launcher"
    cxx20=1; configure_and_build; rc=$?
  fi
  local src cuda=false
  src="$(sed -n 's/.*libtorch-resnet: using LibTorch \(.*\)$/\1/p' "$WORK/configure.log" | head -n 1)"
  grep -q 'CUDA build (torch_cuda linked)' "$WORK/configure.log" && cuda=true
  printf '{"libtorchSource": "%s", "cuda": %s, "seconds": %s, "jobs": %s, "cxx20": %s, "generator": "%s"}\n' \
    "$(echo "$src" | sed 's/"/\\"/g')" "$cuda" "$(( $(date +%s) - t0 ))" "$JOBS" "$([ $cxx20 = 1 ] && echo true || echo false)" "$gen" > "$OUT_DIR/build.json"
  note "LibTorch $src; cuda=$cuda"
  [ "$rc" = 0 ] || return "$rc"
  local so="$PKG/build/Release/libtorch_resnet.node"
  [ -f "$so" ] || { echo "built, but $so is not there"; return 1; }
  if command -v readelf >/dev/null; then readelf -d "$so" | grep -E 'NEEDED|RPATH|RUNPATH'; fi
  if [ "$MODE" = gpu ]; then
    [ "$cuda" = true ] || { echo "RESNET_WITH_CUDA is off: cmake/FindLibTorch.cmake saw neither the torch_cuda target nor TORCH_CUDA_LIBRARIES"; return 1; }
    readelf -d "$so" | grep -q 'libtorch_cuda' || { echo "libtorch_cuda.so is not NEEDED by the addon (--no-as-needed lost?)"; return 1; }
  fi
}
if [ -n "${GPU_CHECK_ADDON:-}" ] && [ "$MODE" = dry ]; then
  # dry runs on a slow machine may reuse an addon built for the same LibTorch
  mkdir -p "$PKG/build/Release" && cp "$GPU_CHECK_ADDON" "$PKG/build/Release/libtorch_resnet.node"
  record build SKIP 0 "reused $GPU_CHECK_ADDON"; say "build: reused $GPU_CHECK_ADDON"
else
  run_step build 420 step_build
fi

# ---- env -------------------------------------------------------------------------------------
DEVICE=$([ "$MODE" = gpu ] && echo cuda || echo cpu)
# If the dynamic loader cannot resolve a library the addon NEEDs (e.g. libcudart.so.13, linked
# from the CUDA toolkit through PyTorch's CMake config, when the toolkit's lib64 is not in
# ld.so.cache), look for it in the Python package's nvidia/*/lib, torch/lib and the toolkit, and
# put those folders on LD_LIBRARY_PATH for our processes (recorded in the step's note).
step_env() {
  local so="$PKG/build/Release/libtorch_resnet.node" missing dirs=() lib d found
  rm -f "$WORK/ld_extra"
  if [ -f "$so" ] && command -v ldd >/dev/null; then
    missing="$(ldd "$so" 2>/dev/null | awk '/not found/ {print $1}')"
    if [ -n "$missing" ]; then
      echo "unresolved by the loader: $missing"
      local site="" cands=()
      [ -n "$PY" ] && site="$("$PY" -c 'import torch,os;print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null)"
      [ -n "$site" ] && cands+=("$site"/nvidia/*/lib "$site/torch/lib")
      command -v nvcc >/dev/null && cands+=("$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/lib64")
      cands+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
      for lib in $missing; do
        found=""
        for d in "${cands[@]}"; do [ -e "$d/$lib" ] && { found="$d"; break; }; done
        if [ -n "$found" ]; then dirs+=("$found"); else echo "  $lib: not found anywhere"; fi
      done
      if [ "${#dirs[@]}" -gt 0 ]; then
        local extra
        extra="$(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd: -)"
        echo "$extra" > "$WORK/ld_extra"
        export LD_LIBRARY_PATH="$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        note "LD_LIBRARY_PATH+=$extra for: $(echo $missing)"
      fi
    fi
  fi
  [ -f "$so" ] || { echo "no addon at $so (see the build step)"; return 1; }
  node "$HERE/env.mjs" --pkg "$PKG" --device "$DEVICE" --out "$OUT_DIR/env.json"
}
ours_ok=0
run_step env 60 step_env && ours_ok=1
if [ -s "$WORK/ld_extra" ]; then export LD_LIBRARY_PATH="$(cat "$WORK/ld_extra")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi

# ---- fixtures --------------------------------------------------------------------------------
fx_args() { node -e "const p=require(process.argv[1])[process.argv[2]].fixtures; console.log(['--archs',p.archs,'--batch',p.batch,'--size',p.size,'--precisions',p.precisions].join(' '))" "$PLAN" "$MODE"; }
step_fixtures() {
  [ -n "$PY" ] || { echo "no python"; return 1; }
  rm -rf "$FIX"
  # shellcheck disable=SC2046
  "$PY" "$HERE/fixtures.py" --out "$FIX" --device "$DEVICE" $(fx_args) || return 1
  cp "$FIX/manifest.json" "$OUT_DIR/fixtures/manifest.json"
}
fx_ok=0
run_step fixtures 150 step_fixtures && fx_ok=1

# ---- parity ----------------------------------------------------------------------------------
step_parity() {
  [ "$ours_ok" = 1 ] && [ "$fx_ok" = 1 ] || { echo "needs the env and fixtures steps"; return 1; }
  NVIDIA_TF32_OVERRIDE=0 node "$HERE/parity.mjs" --pkg "$PKG" --fixtures "$FIX" --device "$DEVICE" --mode strict --out "$OUT_DIR/parity-strict.json"
}
step_parity_tf32() {
  [ "$ours_ok" = 1 ] && [ "$fx_ok" = 1 ] || { echo "needs the env and fixtures steps"; return 1; }
  env -u NVIDIA_TF32_OVERRIDE node "$HERE/parity.mjs" --pkg "$PKG" --fixtures "$FIX" --device "$DEVICE" --mode tf32 --out "$OUT_DIR/parity-tf32.json"
}
run_step parity 180 step_parity
run_step parity-tf32 90 step_parity_tf32
if [ "${GPU_CHECK_KEEP_FIXTURES:-0}" != 1 ]; then rm -f "$FIX"/*.pth "$FIX"/*.safetensors; fi

# ---- training parity -------------------------------------------------------------------------
train_args() { node -e "const p=require(process.argv[1])[process.argv[2]].train; console.log(['--archs',p.archs,'--batch',p.batch,'--size',p.size,'--steps',p.steps,'--precisions',p.precisions].join(' '))" "$PLAN" "$MODE"; }
step_train_parity() {
  [ "$ours_ok" = 1 ] && [ -n "$PY" ] || { echo "needs the env and python steps"; return 1; }
  local tfix="$WORK/train-fixtures-$MODE"
  rm -rf "$tfix"
  # shellcheck disable=SC2046
  "$PY" "$HERE/train_fixtures.py" --out "$tfix" --device "$DEVICE" $(train_args) || return 1
  cp "$tfix/train-manifest.json" "$OUT_DIR/fixtures/train-manifest.json"
  NVIDIA_TF32_OVERRIDE=0 node "$HERE/train-parity.mjs" --pkg "$PKG" --fixtures "$tfix" --device "$DEVICE" --out "$OUT_DIR/train-parity.json"
  local rc=$?
  [ "${GPU_CHECK_KEEP_FIXTURES:-0}" = 1 ] || rm -rf "$tfix"
  return "$rc"
}
run_step train-parity 150 step_train_parity

step_api() {
  [ "$ours_ok" = 1 ] || { echo "needs the env step"; return 1; }
  NVIDIA_TF32_OVERRIDE=0 node "$HERE/api-check.mjs" --pkg "$PKG" --device "$DEVICE" --out "$OUT_DIR/api.json"
}
run_step api 60 step_api

# ---- benchmarks ------------------------------------------------------------------------------
step_bench_torch() {
  [ -n "$PY" ] || { echo "no python"; return 1; }
  "$PY" "$HERE/bench_torch.py" --plan "$PLAN" --mode "$MODE" --out "$OUT_DIR/bench-torch.json"
}
run_step bench-torch 200 step_bench_torch

step_bench_ours() {
  [ "$ours_ok" = 1 ] || { echo "needs the env step"; return 1; }
  local id rc=0 left
  for id in $(node -e "console.log(require(process.argv[1])[process.argv[2]].bench.map(r => r.id).join(' '))" "$PLAN" "$MODE"); do
    left=$(( STEP_DEADLINE - $(date +%s) - 5 ))
    if [ "$left" -lt 10 ]; then echo "no time left for $id"; rc=1; continue; fi
    [ "$left" -gt 90 ] && left=90
    timeout --kill-after=5 "$left" node "$HERE/bench.mjs" --pkg "$PKG" --plan "$PLAN" --mode "$MODE" --row "$id" --out "$OUT_DIR/bench-ours/$id.json" || rc=1
  done
  return "$rc"
}
run_step bench-ours 260 step_bench_ours

# torch.compile last: it is the slowest to set up (a compilation per row) and only informs.
step_bench_compile() {
  [ -n "$PY" ] || { echo "no python"; return 1; }
  "$PY" "$HERE/bench_torch.py" --plan "$PLAN" --mode "$MODE" --compile --deadline "$(( STEP_DEADLINE - 45 ))" --out "$OUT_DIR/bench-compile.json"
}
run_step bench-compile 300 step_bench_compile

# ---- report ----------------------------------------------------------------------------------
say "report"
if [ "$node_ok" = 1 ]; then
  node "$HERE/report.mjs" --dir "$OUT_DIR" --mode "$MODE" > "$OUT_DIR/logs/report.log" 2>&1 || echo "report.mjs failed: see logs/report.log"
  # The report itself (the steps table is already above).
  echo; cat "$OUT_DIR/report.md" 2>/dev/null
else
  cat "$STEPS"
fi
# The device tool brings back at most 8 files from $OUT: keep the two summaries, pack the rest.
if [ "${GPU_CHECK_PACK:-$([ -n "${OUT:-}" ] && echo 1 || echo 0)}" = 1 ]; then
  ( cd "$OUT_DIR" && tar -czf "$WORK/gpu-check-files.tar.gz" --exclude=report.md --exclude=results.json . &&
    find . -mindepth 1 -maxdepth 1 ! -name report.md ! -name results.json -exec rm -rf {} + &&
    mv "$WORK/gpu-check-files.tar.gz" . ) && say "packed the logs and JSON files into $OUT_DIR/gpu-check-files.tar.gz"
fi
say "done: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL); files in $OUT_DIR"
exit "$FAILED"
