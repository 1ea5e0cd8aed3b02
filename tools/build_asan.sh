#!/usr/bin/env bash
# The instrumented CPU build that tools/sanitize.sh and tools/fuzz.sh share, into build-asan:
# clang with AddressSanitizer + UBSan and libFuzzer's coverage hooks, CUDA and MPI off, the
# tests and the fuzz targets (tests/fuzz) built. Installs clang and its runtimes when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
missing=()
for p in clang libclang-rt-14-dev libomp-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build_asan: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
BUILD_DIR=build-asan bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DOSPREY_FUZZ=ON \
  -DOSPREY_SANITIZE=address,undefined "$@"
