#!/usr/bin/env bash
# The instrumented CPU build that tools/sanitize.sh and tools/fuzz.sh share, into build-asan:
# clang with AddressSanitizer + UBSan and libFuzzer's coverage hooks, CUDA and MPI off, the
# tests and the fuzz targets (tests/fuzz) built. Installs clang and its runtimes when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh clang libclang-rt-14-dev libomp-14-dev
BUILD_DIR=build-asan bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DOSPREY_FUZZ=ON \
  -DOSPREY_SANITIZE=address,undefined "$@"
