// CUDA max pooling and global average pooling against the CPU op: values, argmax and dx must
// match exactly (same comparisons, same summation order), including overlapping windows, ties
// and padding.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/pool.h"
#include "kernels/cuda/pool.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::Pool2dShape;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;

Pool2dShape make(int n, int h, int w, int c, int k, int stride, int pad) {
  Pool2dShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.kh = k, s.kw = k, s.stride = stride, s.pad = pad;
  return s;
}

void check_maxpool(const Pool2dShape& s, bool ties, uint32_t seed) {
  INFO("n" << s.n << " " << s.h << "x" << s.w << "x" << s.c << " k" << s.kh << " s" << s.stride
           << " p" << s.pad << (ties ? " ties" : ""));
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
  auto x = random_floats(nx, seed);
  // Few distinct values: many windows hold several equal maxima.
  if (ties)
    for (float& v : x) v = std::round(v * 2.0f);
  const auto dy = random_floats(ny, seed + 1);
  std::vector<float> y_cpu(ny), dx_cpu(nx);
  std::vector<int32_t> am_cpu(ny);
  osprey::cpu::maxpool2d_forward(s, x.data(), y_cpu.data(), am_cpu.data());
  osprey::cpu::maxpool2d_backward(s, dy.data(), am_cpu.data(), dx_cpu.data());

  DeviceBuffer<float> x_d(x), dy_d(dy), y(ny), dx(nx);
  DeviceBuffer<int32_t> am(ny);
  y.poison(), dx.poison(), am.poison();
  osprey::cuda::maxpool2d_forward(s, x_d.ptr, y.ptr, am.ptr, nullptr);
  REQUIRE(y.download() == y_cpu);
  REQUIRE(am.download() == am_cpu);
  osprey::cuda::maxpool2d_backward(s, dy_d.ptr, am.ptr, dx.ptr, nullptr);
  REQUIRE(dx.download() == dx_cpu);
}

}  // namespace

TEST_CASE("cuda maxpool matches the CPU op exactly") {
  uint32_t seed = 1;
  for (int c : {1, 3, 13, 32})
    for (bool ties : {false, true}) {
      check_maxpool(make(1, 7, 9, c, 2, 2, 0), ties, seed++);  // odd sizes drop the last column
      check_maxpool(make(2, 8, 8, c, 2, 2, 0), ties, seed++);
      check_maxpool(make(3, 9, 7, c, 3, 2, 1), ties, seed++);    // overlapping, padded
      check_maxpool(make(2, 11, 11, c, 3, 1, 1), ties, seed++);  // stride 1: heavy overlap
      check_maxpool(make(1, 5, 6, c, 3, 3, 0), ties, seed++);
      check_maxpool(make(1, 2, 2, c, 3, 1, 0), ties, seed++);  // no output: dx all zero
    }
  check_maxpool(make(8, 56, 56, 64, 3, 2, 1), false, 99);
}

TEST_CASE("cuda global average pool matches the CPU op exactly") {
  for (int n : {1, 3, 64})
    for (int hw : {1, 7, 49})
      for (int c : {1, 13, 144}) {
        INFO("n " << n << " hw " << hw << " c " << c);
        const auto x = random_floats(size_t(n) * hw * c, n * 100 + hw);
        const auto dy = random_floats(size_t(n) * c, n * 100 + hw + 1);
        std::vector<float> y_cpu(size_t(n) * c), dx_cpu(x.size());
        osprey::cpu::global_avg_pool_forward(n, hw, c, x.data(), y_cpu.data());
        osprey::cpu::global_avg_pool_backward(n, hw, c, dy.data(), dx_cpu.data());
        DeviceBuffer<float> x_d(x), dy_d(dy), y(y_cpu.size()), dx(x.size());
        y.poison(), dx.poison();
        osprey::cuda::global_avg_pool_forward(n, hw, c, x_d.ptr, y.ptr, nullptr);
        osprey::cuda::global_avg_pool_backward(n, hw, c, dy_d.ptr, dx.ptr, nullptr);
        REQUIRE(y.download() == y_cpu);
        REQUIRE(dx.download() == dx_cpu);
      }
}
