#!/bin/sh
# Compiler launcher used by scripts/gpu-check.sh only when the LibTorch headers need C++20 while
# CMakeLists.txt asks for C++17: runs the compiler with -std=gnu++20 last, which wins over the
# -std=gnu++17 CMake put earlier on the line.
exec "$@" -std=gnu++20
