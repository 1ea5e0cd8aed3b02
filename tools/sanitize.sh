#!/usr/bin/env bash
# The CPU test suite under sanitizers. `address` (the default): clang with AddressSanitizer and
# UBSan (every report fatal) into build-asan, the same build tools/fuzz.sh runs its targets from,
# then CTest there. `thread`: GCC with ThreadSanitizer into build-tsan, then the tests of the
# threaded parts that OpenMP does not drive (the batch loader, the server).
# usage: tools/sanitize.sh [address|thread]
# ThreadSanitizer cannot see inside Debian's libgomp (not instrumented), so the happens-before
# edges of OpenMP's own barriers are invisible and every access of an OpenMP worker to memory its
# parent wrote looks like a race. The thread run therefore sets OMP_THREAD_LIMIT=1 (even a
# num_threads(n) region then runs on its calling thread alone): it checks our own threads (batch
# loader, prefetch, server loop and workers, batching), not OpenMP's, whose kernels the suites'
# results and ASan check.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-address}
jobs=$(nproc)
case $mode in
  address)
    bash tools/build_asan.sh
    # detect_leaks off: oneDNN and OpenMP keep their thread pools and caches alive at exit by design.
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900
    ;;
  thread)
    bash tools/install_deps.sh
    BUILD_DIR=build-tsan bash tools/build.sh -DOSPREY_CUDA=OFF -DOSPREY_MPI=OFF \
      -DOSPREY_SANITIZE=thread
    export OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    build-tsan/tests/test_data
    build-tsan/tests/test_app -# "[#test_app_serve],[#test_app_http_abuse],[#test_app_http_parse]"
    ;;
  *) echo "usage: tools/sanitize.sh [address|thread]" >&2; exit 2 ;;
esac
