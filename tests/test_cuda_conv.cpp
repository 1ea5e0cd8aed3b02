// CUDA dense convolution (pointwise GEMM, im2col + GEMM, col2im) against the CPU op.
#include <catch2/catch.hpp>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cuda/conv.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::Conv2dShape;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

Conv2dShape shape(int n, int h, int w, int c, int k, int kh, int kw, int stride, int pad) {
  Conv2dShape s;
  s.n = n;
  s.h = h;
  s.w = w;
  s.c = c;
  s.k = k;
  s.kh = kh;
  s.kw = kw;
  s.stride = stride;
  s.pad = pad;
  return s;
}

void check_conv(const Conv2dShape& s, bool with_bias, uint32_t seed) {
  INFO("n=" << s.n << " h=" << s.h << " w=" << s.w << " c=" << s.c << " k=" << s.k << " kh=" << s.kh
            << " kw=" << s.kw << " stride=" << s.stride << " pad=" << s.pad
            << " bias=" << with_bias);
  const size_t nx = size_t(s.n) * s.h * s.w * s.c;
  const size_t nw = size_t(s.k) * s.kh * s.kw * s.c;
  const size_t ny = size_t(s.n) * s.oh() * s.ow() * s.k;
  REQUIRE(ny > 0);
  const auto x = random_floats(nx, seed);
  const auto w = random_floats(nw, seed + 1);
  const auto bias = random_floats(size_t(s.k), seed + 2);
  const auto dy = random_floats(ny, seed + 3);
  // Accumulated gradients start from the same random values on both sides.
  auto dw_cpu = random_floats(nw, seed + 4);
  auto db_cpu = random_floats(size_t(s.k), seed + 5);
  std::vector<float> y_cpu(ny), dx_cpu(nx);

  DeviceBuffer<float> gx(x), gw(w), gbias(bias), gdy(dy), gy(ny), gdx(nx), gdw(dw_cpu), gdb(db_cpu);
  gy.poison();
  gdx.poison();
  osprey::cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? bias.data() : nullptr,
                              y_cpu.data());
  osprey::cuda::conv2d_forward(s, gx.ptr, gw.ptr, with_bias ? gbias.ptr : nullptr, gy.ptr, nullptr);
  REQUIRE(rel_l2(gy.download(), y_cpu) < 1e-5);

  osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx_cpu.data(), dw_cpu.data(),
                               db_cpu.data());
  osprey::cuda::conv2d_backward(s, gx.ptr, gw.ptr, gdy.ptr, gdx.ptr, gdw.ptr, gdb.ptr, nullptr);
  REQUIRE(rel_l2(gdx.download(), dx_cpu) < 1e-5);
  REQUIRE(rel_l2(gdw.download(), dw_cpu) < 1e-5);
  REQUIRE(rel_l2(gdb.download(), db_cpu) < 1e-5);
}

}  // namespace

TEST_CASE("cuda conv2d forward and backward match the CPU op") {
  const Conv2dShape shapes[] = {
      shape(2, 5, 7, 3, 4, 1, 1, 1, 0),     // pointwise: one GEMM, no im2col
      shape(1, 9, 9, 16, 8, 1, 1, 1, 0),    // pointwise, batch 1
      shape(2, 8, 7, 4, 3, 1, 1, 2, 0),     // 1x1 stride 2: not pointwise, goes through im2col
      shape(2, 7, 6, 3, 5, 3, 3, 1, 1),     // 3x3 stride 1 pad 1, odd C
      shape(3, 9, 8, 5, 7, 3, 3, 2, 1),     // 3x3 stride 2 pad 1
      shape(1, 11, 10, 3, 6, 5, 5, 1, 2),   // 5x5 pad 2, batch 1
      shape(2, 6, 6, 16, 16, 3, 3, 1, 0),   // no padding, C = 16
      shape(2, 10, 9, 32, 24, 3, 3, 1, 1),  // wider channels
      shape(1, 4, 5, 3, 2, 3, 3, 2, 1),     // tiny image, stride 2
      shape(2, 13, 12, 8, 5, 3, 5, 2, 2),   // non-square kernel
      shape(1, 3, 3, 1, 1, 3, 3, 1, 0),     // one output pixel, C = K = 1
  };
  uint32_t seed = 1000;
  for (const auto& s : shapes)
    for (bool with_bias : {false, true}) check_conv(s, with_bias, seed += 10);
}

TEST_CASE("cuda conv2d backward skips null gradients") {
  const Conv2dShape s = shape(2, 7, 6, 3, 5, 3, 3, 1, 1);
  const size_t nx = size_t(s.n) * s.h * s.w * s.c;
  const size_t nw = size_t(s.k) * s.kh * s.kw * s.c;
  const size_t ny = size_t(s.n) * s.oh() * s.ow() * s.k;
  const auto x = random_floats(nx, 1), w = random_floats(nw, 2), dy = random_floats(ny, 3);
  std::vector<float> dx_cpu(nx);
  osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx_cpu.data(), nullptr, nullptr);
  DeviceBuffer<float> gx(x), gw(w), gdy(dy), gdx(nx);
  gdx.poison();
  osprey::cuda::conv2d_backward(s, gx.ptr, gw.ptr, gdy.ptr, gdx.ptr, nullptr, nullptr, nullptr);
  REQUIRE(rel_l2(gdx.download(), dx_cpu) < 1e-5);

  auto dw_cpu = random_floats(nw, 4);
  DeviceBuffer<float> gdw(dw_cpu);
  osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, dw_cpu.data(), nullptr);
  osprey::cuda::conv2d_backward(s, gx.ptr, gw.ptr, gdy.ptr, nullptr, gdw.ptr, nullptr, nullptr);
  REQUIRE(rel_l2(gdw.download(), dw_cpu) < 1e-5);
}
