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
  explicit DeviceBuffer(size_t n) : n(n) { cudaCheck(cudaMalloc(&ptr, (n ? n : 1) * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& v) : DeviceBuffer(v.size()) { upload(v); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<T>& v) {
    REQUIRE(v.size() == n);
    cudaCheck(cudaMemcpy(ptr, v.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  // All bytes 0xff: NaN for floats, -1 for integers.
  void poison() { cudaCheck(cudaMemset(ptr, 0xff, n * sizeof(T))); }
  std::vector<T> download() const {
    cudaCheck(cudaDeviceSynchronize());
    std::vector<T> v(n);
    cudaCheck(cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  T* ptr = nullptr;
  size_t n;
};

using osprey_test::random_floats;

// ||a - b|| / max(||b||, tiny) over the whole array; NaN anywhere gives infinity.
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace osprey::tests
