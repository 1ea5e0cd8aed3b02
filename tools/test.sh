#!/usr/bin/env bash
# The whole test suite: install what is missing, build with every backend this machine has and
# run CTest, then build and test again with CUDA and MPI switched off.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
jobs=$(nproc)
BUILD_DIR=build bash tools/build.sh
ctest --test-dir build --output-on-failure -j "$jobs"
BUILD_DIR=build-cpu-only bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF
ctest --test-dir build-cpu-only --output-on-failure -j "$jobs"
