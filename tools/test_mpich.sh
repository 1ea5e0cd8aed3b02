#!/usr/bin/env bash
# The MPI part of Osprey built against MPICH instead of OpenMPI, and its multi-rank tests run
# with MPICH's launcher: Debian's mpich and libmpich-dev install beside OpenMPI (whose
# unsuffixed mpirun/mpicxx stay the default); CMake picks MPICH with
# -DMPI_EXECUTABLE_SUFFIX=.mpich. Builds only what those tests run (osprey, test_dist) into
# build-mpich, CPU only; every multi-rank test asserts the world size it asked for.
# usage: tools/test_mpich.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh mpich libmpich-dev
cmake -S . -B build-mpich -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSPREY_CUDA=OFF -DOSPREY_MPI=ON \
  -DMPI_EXECUTABLE_SUFFIX=.mpich >/dev/null
grep -q "MPIEXEC_EXECUTABLE:FILEPATH=.*mpiexec.mpich" build-mpich/CMakeCache.txt ||
  { echo "test_mpich: CMake did not pick MPICH's launcher" >&2; exit 1; }
cmake --build build-mpich -j "$(nproc)" --target osprey test_dist
ldd build-mpich/osprey | grep -q libmpich ||
  { echo "test_mpich: build-mpich/osprey is not linked with MPICH" >&2; exit 1; }
ctest --test-dir build-mpich --output-on-failure -j "$(nproc)" \
  -R "^(test_dist|cli_mpirun_)"
