// Scratch memory and error checks of the CUDA kernels: a StreamBuffer goes back to the pool when
// a check throws inside its scope, and the check names the call, file and line.
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/stream_buffer.cuh"

TEST_CASE("a stream buffer returns to the pool when a check throws in its scope") {
  using namespace osprey::cuda;
  synchronize();
  const uint64_t before = used_memory_bytes();
  auto failing_kernel_call = [&] {
    StreamBuffer<float> scratch(1 << 20, compute_stream());
    REQUIRE(used_memory_bytes() >= before + (4u << 20));
    OSPREY_CUDA_CHECK(cudaErrorInvalidValue);
  };
  REQUIRE_THROWS_WITH(failing_kernel_call(),
                      Catch::StartsWith("CUDA error in cudaErrorInvalidValue at ") &&
                          Catch::Contains("test_cuda_stream_buffer.cpp:") &&
                          Catch::EndsWith(cudaGetErrorString(cudaErrorInvalidValue)));
  synchronize();
  REQUIRE(used_memory_bytes() == before);
}
