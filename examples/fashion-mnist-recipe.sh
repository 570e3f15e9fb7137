#!/usr/bin/env bash
# The Fashion-MNIST run of RESULTS.md: the paper's resnet20 (0.27M parameters) with one cosine
# schedule of 40 epochs and the paper's augmentation (4-pixel padding, random crop, horizontal
# flip). Test accuracy 0.9485 in our run (0.9487 at best, epoch 37), 57 min on 2 cores. The
# Fashion-MNIST README's 0.949 (ResNet18) is not reached: RESULTS.md lists what was tried.
#   bash examples/fashion-mnist-recipe.sh [OUT_DIR]      (from a clone, after bash scripts/setup.sh)
set -euo pipefail
out=${1:-runs/fashion-mnist-recipe}
mkdir -p "$out"
resnet() { node --import=tsx "$(dirname "$0")/../bin/resnet.ts" "$@"; }
resnet train --dataset fashion-mnist --arch resnet20 --epochs 40 --batch-size 128 --lr 0.1 --schedule cosine \
  --augment --seed 0 --run-dir "$out" --plot --out "$out/resnet20-fashion-mnist.safetensors"
resnet eval --dataset fashion-mnist --arch resnet20 --weights "$out/resnet20-fashion-mnist.safetensors"
