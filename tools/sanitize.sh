#!/usr/bin/env bash
# The CPU test suite under sanitizers. `address` (the default): clang with AddressSanitizer and
# UBSan (every report fatal) into build-asan, the same build tools/fuzz.sh runs its targets from,
# then CTest there. `thread`: GCC with ThreadSanitizer into build-tsan, then the tests of the
# threaded parts that OpenMP does not drive (the batch loader, the server).
# usage: tools/sanitize.sh [address|thread]
# ThreadSanitizer cannot see inside Debian's libgomp (not instrumented), so OpenMP's own
# barriers look like races to it: the thread run sets OMP_NUM_THREADS=1, which keeps every
# OpenMP region on its calling thread, and so checks our threads (loader, prefetch, server
# workers, batching) and not OpenMP's.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-address}
jobs=$(nproc)
case $mode in
  address)
    bash tools/build_asan.sh
    # detect_leaks off: OpenBLAS and OpenMP keep their thread pools alive at exit by design.
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900
    ;;
  thread)
    bash tools/install_deps.sh
    BUILD_DIR=build-tsan bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF \
      -DOSPREY_SANITIZE=thread
    OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      ctest --test-dir build-tsan --output-on-failure -R '^test_data$|^test_app$' --timeout 900
    ;;
  *) echo "usage: tools/sanitize.sh [address|thread]" >&2; exit 2 ;;
esac
