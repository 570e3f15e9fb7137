#!/usr/bin/env bash
# Installs the Debian packages this project needs, idempotently:
#   libtorch-dev          LibTorch 1.13 (C++ API + CMake config) to build the addon against
#   libgloo-dev           the Gloo headers that c10d's ProcessGroupGloo.hpp includes (distributed training)
#   libopenblas0-pthread  a fast BLAS for LibTorch (the reference BLAS is ~40x slower)
#   libdnnl-dev           oneDNN headers, the same 2.6 library LibTorch links, for the CPU inference engine
#   libjpeg62-turbo-dev   libjpeg-turbo's headers (the decoder Pillow links), for the streaming data sets' JPEG fast path
#   python3-torchvision   PyTorch + torchvision for the parity fixtures (system Python only)
#   dataset-fashion-mnist the real Fashion-MNIST IDX files, for the demo
#   cmake, g++, make      the native build toolchain
# Packages already present are left alone; apt-get update runs only when something is missing.
set -euo pipefail

PACKAGES=(libtorch-dev libgloo-dev libopenblas0-pthread libdnnl-dev libjpeg62-turbo-dev python3-torch python3-torchvision dataset-fashion-mnist cmake g++ make)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all system packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
