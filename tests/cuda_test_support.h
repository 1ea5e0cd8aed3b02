// Helpers for the GPU test binary: device buffers poisoned with NaN before a kernel writes them,
// deterministic random inputs, and a relative-error comparison against the CPU op.
#pragma once
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "tests/op_reference.h"

namespace osprey::tests {

template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(size_t n) : n(n) {
    OSPREY_CUDA_CHECK(cudaMalloc(&ptr, (n ? n : 1) * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& v) : DeviceBuffer(v.size()) { upload(v); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<T>& v) {
    REQUIRE(v.size() == n);
    OSPREY_CUDA_CHECK(cudaMemcpy(ptr, v.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  // All bytes 0xff: NaN for floats, -1 for integers.
  void poison() { OSPREY_CUDA_CHECK(cudaMemset(ptr, 0xff, n * sizeof(T))); }
  std::vector<T> download() const {
    OSPREY_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> v(n);
    OSPREY_CUDA_CHECK(cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  T* ptr = nullptr;
  size_t n;
};

using osprey_test::random_floats;

using osprey_test::rel_l2;

}  // namespace osprey::tests
