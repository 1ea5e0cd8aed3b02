// CUDA elementwise ops against their CPU counterparts.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/elementwise.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::tests::DeviceBuffer;

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
    DeviceBuffer<float> dx_in(n), dy_in(n), y(n), dx(n);
    dx_in.upload(x);
    dy_in.upload(dy);
    y.poison();
    dx.poison();
    osprey::cuda::relu_forward(int64_t(n), dx_in.ptr, y.ptr, nullptr);
    osprey::cuda::relu_backward(int64_t(n), y.ptr, dy_in.ptr, dx.ptr, nullptr);
    OSPREY_CUDA_CHECK(cudaDeviceSynchronize());
    REQUIRE(y.download() == y_cpu);
    REQUIRE(dx.download() == dx_cpu);
  }
}

namespace {

using osprey::Activation;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

const size_t kElementwiseSizes[] = {1, 7, 1000, 100003};

}  // namespace

TEST_CASE("cuda activations match the CPU op, out of place and in place") {
  for (Activation act : {Activation::none, Activation::relu, Activation::relu6})
    for (size_t n : kElementwiseSizes) {
      INFO("act=" << int(act) << " n=" << n);
      // [-8, 8] reaches both of relu6's clamps.
      const auto x = random_floats(n, 11, -8.0f, 8.0f), dy = random_floats(n, 12);
      std::vector<float> y_cpu(n), dx_cpu(n);
      osprey::cpu::activation_forward(int64_t(n), act, x.data(), y_cpu.data());
      osprey::cpu::activation_backward(int64_t(n), act, y_cpu.data(), dy.data(), dx_cpu.data());
      DeviceBuffer<float> gx(x), gdy(dy), gy(n), gdx(n);
      gy.poison();
      gdx.poison();
      osprey::cuda::activation_forward(int64_t(n), act, gx.ptr, gy.ptr, nullptr);
      osprey::cuda::activation_backward(int64_t(n), act, gy.ptr, gdy.ptr, gdx.ptr, nullptr);
      REQUIRE(gy.download() == y_cpu);
      REQUIRE(gdx.download() == dx_cpu);
      // In place: y aliases x, dx aliases dy.
      osprey::cuda::activation_forward(int64_t(n), act, gx.ptr, gx.ptr, nullptr);
      osprey::cuda::activation_backward(int64_t(n), act, gx.ptr, gdy.ptr, gdy.ptr, nullptr);
      REQUIRE(gx.download() == y_cpu);
      REQUIRE(gdy.download() == dx_cpu);
    }
}

TEST_CASE("cuda dropout draws the CPU's mask bit for bit") {
  const uint64_t seeds[][2] = {{0, 0}, {42, 0}, {42, 123457}, {0xdeadbeefcafeULL, 1ULL << 40}};
  for (float p : {0.0f, 0.1f, 0.5f, 1.0f})
    for (const auto& so : seeds)
      for (size_t n : kElementwiseSizes) {
        INFO("p=" << p << " seed=" << so[0] << " offset=" << so[1] << " n=" << n);
        const auto x = random_floats(n, 21), dy = random_floats(n, 22);
        std::vector<float> y_cpu(n), dx_cpu(n);
        std::vector<uint8_t> mask_cpu(n);
        osprey::cpu::dropout_forward(int64_t(n), p, so[0], so[1], x.data(), y_cpu.data(),
                                     mask_cpu.data());
        osprey::cpu::dropout_backward(int64_t(n), p, mask_cpu.data(), dy.data(), dx_cpu.data());
        DeviceBuffer<float> gx(x), gdy(dy), gy(n), gdx(n);
        DeviceBuffer<uint8_t> gmask(n);
        gy.poison();
        gdx.poison();
        gmask.poison();
        osprey::cuda::dropout_forward(int64_t(n), p, so[0], so[1], gx.ptr, gy.ptr, gmask.ptr,
                                      nullptr);
        osprey::cuda::dropout_backward(int64_t(n), p, gmask.ptr, gdy.ptr, gdx.ptr, nullptr);
        REQUIRE(gmask.download() == mask_cpu);
        REQUIRE(gy.download() == y_cpu);
        REQUIRE(gdx.download() == dx_cpu);
      }
}

TEST_CASE("cuda dropout masks depend on the seed and the offset") {
  // Guards against a hash that ignores its inputs (which would still match itself).
  const size_t n = 4096;
  DeviceBuffer<float> gx(random_floats(n, 31)), gy(n);
  DeviceBuffer<uint8_t> m1(n), m2(n), m3(n);
  osprey::cuda::dropout_forward(int64_t(n), 0.5f, 1, 0, gx.ptr, gy.ptr, m1.ptr, nullptr);
  osprey::cuda::dropout_forward(int64_t(n), 0.5f, 2, 0, gx.ptr, gy.ptr, m2.ptr, nullptr);
  osprey::cuda::dropout_forward(int64_t(n), 0.5f, 1, n, gx.ptr, gy.ptr, m3.ptr, nullptr);
  const auto a = m1.download(), b = m2.download(), c = m3.download();
  REQUIRE(a != b);
  REQUIRE(a != c);
  size_t kept = 0;
  for (uint8_t v : a) kept += v;
  REQUIRE(kept > n / 2 - 200);
  REQUIRE(kept < n / 2 + 200);
}

TEST_CASE("cuda fill, add, axpy and scale match the CPU ops") {
  for (size_t n : kElementwiseSizes) {
    INFO("n=" << n);
    const auto a = random_floats(n, 41), b = random_floats(n, 42);
    DeviceBuffer<float> ga(a), gb(b), gy(n);

    std::vector<float> y_cpu(n);
    gy.poison();
    osprey::cpu::fill(int64_t(n), 2.5f, y_cpu.data());
    osprey::cuda::fill(int64_t(n), 2.5f, gy.ptr, nullptr);
    REQUIRE(gy.download() == y_cpu);

    gy.poison();
    osprey::cpu::add(int64_t(n), a.data(), b.data(), y_cpu.data());
    osprey::cuda::add(int64_t(n), ga.ptr, gb.ptr, gy.ptr, nullptr);
    REQUIRE(gy.download() == y_cpu);

    // y starts as b on both sides. Not compared bit for bit: the host compiler may contract
    // y + alpha * x into an FMA where the target has one.
    auto axpy_cpu = b;
    gy.upload(b);
    osprey::cpu::axpy(int64_t(n), -0.3f, a.data(), axpy_cpu.data());
    osprey::cuda::axpy(int64_t(n), -0.3f, ga.ptr, gy.ptr, nullptr);
    REQUIRE(rel_l2(gy.download(), axpy_cpu) < 1e-6);

    auto scale_cpu = a;
    gy.upload(a);
    osprey::cpu::scale(int64_t(n), 1.75f, scale_cpu.data());
    osprey::cuda::scale(int64_t(n), 1.75f, gy.ptr, nullptr);
    REQUIRE(gy.download() == scale_cpu);
  }
}

TEST_CASE("cuda sum_squares accumulates in double and is deterministic") {
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(100003), size_t(1) << 22}) {
    INFO("n=" << n);
    const auto x = random_floats(n, 51, -3.0f, 3.0f);
    const double cpu = osprey::cpu::sum_squares(int64_t(n), x.data());
    DeviceBuffer<float> gx(x);
    DeviceBuffer<double> out(1);
    out.poison();
    osprey::cuda::sum_squares(int64_t(n), gx.ptr, out.ptr, nullptr);
    const double first = out.download()[0];
    // Both sums are in double; only the order differs.
    REQUIRE(std::fabs(first - cpu) <= 1e-10 * cpu);
    out.poison();
    osprey::cuda::sum_squares(int64_t(n), gx.ptr, out.ptr, nullptr);
    const double second = out.download()[0];
    REQUIRE(std::memcmp(&first, &second, sizeof(double)) == 0);
  }
}
