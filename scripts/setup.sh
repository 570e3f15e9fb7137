#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before the demo or the tests:
# the system packages (idempotent), then the npm packages, which also build the native addon
# (cmake-js, Release, parallel) and compile the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
