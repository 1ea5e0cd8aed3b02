#!/usr/bin/env bash
# The whole test suite: install what is missing, build with every backend this machine has and
# run CTest, then build and test again with CUDA and MPI switched off.
# OSPREY_TEST_BUILDS=full (or cpu-only) runs one of the two only: CI's second, fresh Debian root
# checks what the README's commands install, which the second build needs nothing more of.
set -euo pipefail
cd "$(dirname "$0")/.."
builds=${OSPREY_TEST_BUILDS:-full cpu-only}
case " $builds " in
  *" full "* | *" cpu-only "*) ;;
  *) echo "tools/test.sh: OSPREY_TEST_BUILDS is 'full', 'cpu-only' or both, not '$builds'" >&2
     exit 2 ;;
esac
bash tools/install_deps.sh
jobs=$(nproc)
if [[ " $builds " == *" full "* ]]; then
  BUILD_DIR=build bash tools/build.sh
  ctest --test-dir build --output-on-failure -j "$jobs"
fi
if [[ " $builds " == *" cpu-only "* ]]; then
  BUILD_DIR=build-cpu-only bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF
  ctest --test-dir build-cpu-only --output-on-failure -j "$jobs"
fi
