#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before the demo or the tests:
# the system packages (idempotent), then the npm packages, which also build the native addon
# (cmake-js, Release, parallel) and compile the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
# onnxruntime-node (a dev dependency, for the benchmarks) ships its CPU binary in the package; its
# install script would otherwise try to fetch CUDA add-ons from the internet.
ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund
