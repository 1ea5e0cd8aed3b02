// Entry point of the GPU test binary: exits 77 (CTest: skipped) when no GPU is present.
#include <catch2/catch.hpp>
#include <cstdio>

#include "kernels/cuda/device.h"
#include "tests/catch_session.h"

int main(int argc, char** argv) {
  if (osprey::cuda::device_count() == 0) {
    std::printf("no CUDA device: skipping\n");
    return 77;
  }
  return osprey_test::run_catch_session(argc, argv);
}
