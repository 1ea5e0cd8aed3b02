// CUDA ops against their CPU counterparts. Exits 77 (skipped) when no GPU is present.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device.h"
#include "kernels/cuda/elementwise.h"

namespace {

// A device buffer poisoned with NaN before each kernel writes it, so unwritten outputs show.
struct DeviceBuffer {
  explicit DeviceBuffer(size_t n) : n(n) { cudaCheck(cudaMalloc(&ptr, n * sizeof(float))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<float>& v) {
    cudaCheck(cudaMemcpy(ptr, v.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  void poison() { cudaCheck(cudaMemset(ptr, 0xff, n * sizeof(float))); }
  std::vector<float> download() const {
    std::vector<float> v(n);
    cudaCheck(cudaMemcpy(v.data(), ptr, n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
  float* ptr = nullptr;
  size_t n;
};

std::vector<float> random_vector(size_t n, unsigned seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(float(i * 7919 + seed)) * 3.0f;
  return v;
}

}  // namespace

TEST_CASE("cuda relu forward and backward match the CPU op") {
  for (size_t n : {size_t(1), size_t(1000), size_t(1) << 20}) {
    auto x = random_vector(n, 1), dy = random_vector(n, 2);
    std::vector<float> y_cpu(n), dx_cpu(n);
    osprey::cpu::relu_forward(int64_t(n), x.data(), y_cpu.data());
    osprey::cpu::relu_backward(int64_t(n), y_cpu.data(), dy.data(), dx_cpu.data());
    DeviceBuffer dx_in(n), dy_in(n), y(n), dx(n);
    dx_in.upload(x);
    dy_in.upload(dy);
    y.poison();
    dx.poison();
    osprey::cuda::relu_forward(int64_t(n), dx_in.ptr, y.ptr, nullptr);
    osprey::cuda::relu_backward(int64_t(n), y.ptr, dy_in.ptr, dx.ptr, nullptr);
    cudaCheck(cudaDeviceSynchronize());
    REQUIRE(y.download() == y_cpu);
    REQUIRE(dx.download() == dx_cpu);
  }
}

int main(int argc, char** argv) {
  if (osprey::cuda::device_count() == 0) {
    std::printf("no CUDA device: skipping\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
