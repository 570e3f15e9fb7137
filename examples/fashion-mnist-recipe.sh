#!/usr/bin/env bash
# The Fashion-MNIST recipe of RESULTS.md: the paper's resnet20 (0.27M parameters) to 0.949 test
# accuracy or better on a CPU. Two cosine schedules, the second one a warm restart from the first's
# weights at a fifth of the learning rate (SGDR, Loshchilov & Hutter 2017). Both use the paper's
# augmentation (4-pixel padding, random crop, horizontal flip); seeds make the runs repeatable.
#   bash examples/fashion-mnist-recipe.sh [OUT_DIR]      (from a clone, after bash scripts/setup.sh)
set -euo pipefail
out=${1:-runs/fashion-mnist-recipe}
mkdir -p "$out"
resnet() { node --import=tsx "$(dirname "$0")/../bin/resnet.ts" "$@"; }
resnet train --dataset fashion-mnist --arch resnet20 --epochs 40 --batch-size 128 --lr 0.1 --schedule cosine \
  --augment --seed 0 --run-dir "$out/stage1" --out "$out/stage1.safetensors"
resnet train --dataset fashion-mnist --arch resnet20 --weights "$out/stage1.safetensors" --epochs 15 --batch-size 128 \
  --lr 0.02 --schedule cosine --augment --seed 1 --run-dir "$out/stage2" --plot --out "$out/resnet20-fashion-mnist.safetensors"
resnet eval --dataset fashion-mnist --arch resnet20 --weights "$out/resnet20-fashion-mnist.safetensors"
