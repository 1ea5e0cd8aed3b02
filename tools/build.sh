#!/usr/bin/env bash
# Configures and builds Osprey into BUILD_DIR (default: build) with any extra CMake arguments.
# CUDA and MPI are detected; pass -DOSPREY_CUDA=OFF / -DOSPREY_MPI=OFF to leave them out.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
