// CUDA depthwise convolution against the CPU op: forward, input gradient, and the accumulated
// weight and bias gradients, over odd shapes that reach every kernel path (3x3 stride 1 and 2,
// other kernel sizes, scalar and 128-bit channel access, single- and multi-block reductions).
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/depthwise.h"
#include "kernels/cuda/depthwise.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::DepthwiseShape;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

DepthwiseShape make(int n, int h, int w, int c, int k, int stride, int pad) {
  DepthwiseShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.kh = k, s.kw = k, s.stride = stride, s.pad = pad;
  return s;
}

std::string name(const DepthwiseShape& s) {
  std::ostringstream o;
  o << "n" << s.n << " " << s.h << "x" << s.w << "x" << s.c << " k" << s.kh << "x" << s.kw << " s"
    << s.stride << " p" << s.pad;
  return o.str();
}

void check_shape(const DepthwiseShape& s, bool with_bias, uint32_t seed) {
  INFO(name(s) << (with_bias ? " bias" : " no bias"));
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
  const size_t nw = size_t(s.kh) * s.kw * s.c;
  const auto x = random_floats(nx, seed), w = random_floats(nw, seed + 1),
             b = random_floats(s.c, seed + 2), dy = random_floats(ny, seed + 3);
  // Accumulated outputs start from the same random values on both sides, to test the +=.
  const auto dw0 = random_floats(nw, seed + 4), db0 = random_floats(s.c, seed + 5);

  std::vector<float> y_cpu(ny), dx_cpu(nx), dw_cpu = dw0, db_cpu = db0;
  osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr,
                                        y_cpu.data());
  osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx_cpu.data(),
                                         dw_cpu.data(), db_cpu.data());

  DeviceBuffer<float> dx_in(x), dw_in(w), db_in(b), dy_in(dy), y(ny), dx(nx), dw(dw0), db(db0);
  y.poison();
  dx.poison();
  osprey::cuda::depthwise_conv2d_forward(s, dx_in.ptr, dw_in.ptr, with_bias ? db_in.ptr : nullptr,
                                         y.ptr, nullptr);
  osprey::cuda::depthwise_conv2d_backward(s, dx_in.ptr, dw_in.ptr, dy_in.ptr, dx.ptr, dw.ptr,
                                          db.ptr, nullptr);
  REQUIRE(rel_l2(y.download(), y_cpu) < 1e-5);
  REQUIRE(rel_l2(dx.download(), dx_cpu) < 1e-5);
  REQUIRE(rel_l2(dw.download(), dw_cpu) < 1e-5);
  REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
}

}  // namespace

TEST_CASE("cuda depthwise 3x3 matches the CPU op on odd shapes") {
  uint32_t seed = 100;
  for (int c : {1, 3, 13, 32, 36, 144})
    for (int stride : {1, 2})
      for (const auto& hw :
           {std::pair{1, 1}, std::pair{5, 7}, std::pair{9, 4}, std::pair{17, 17}}) {
        check_shape(make(1, hw.first, hw.second, c, 3, stride, 1), true, seed++);
        check_shape(make(3, hw.first, hw.second, c, 3, stride, 1), false, seed++);
      }
}

TEST_CASE("cuda depthwise other kernels, strides and paddings match the CPU op") {
  uint32_t seed = 500;
  for (int c : {5, 8}) {
    check_shape(make(2, 9, 11, c, 5, 1, 2), true, seed++);
    check_shape(make(2, 9, 11, c, 5, 2, 2), true, seed++);
    check_shape(make(2, 10, 7, c, 3, 3, 1), true, seed++);
    check_shape(make(2, 6, 6, c, 3, 1, 0), true, seed++);  // no padding
    check_shape(make(2, 6, 5, c, 3, 2, 0), false, seed++);
    check_shape(make(1, 2, 2, c, 5, 1, 0), true, seed++);   // window larger than the input
    check_shape(make(2, 7, 7, c, 1, 1, 0), true, seed++);   // 1x1
    check_shape(make(2, 7, 8, c, 2, 2, 0), false, seed++);  // even kernel
  }
}

TEST_CASE("cuda depthwise matches the CPU op on large multi-block shapes") {
  check_shape(make(8, 56, 56, 144, 3, 2, 1), false, 900);
  check_shape(make(4, 28, 28, 192, 3, 1, 1), false, 901);
  check_shape(make(16, 7, 7, 960, 3, 1, 1), true, 902);
  check_shape(make(64, 32, 32, 3, 3, 1, 1), true, 903);  // scalar path, many partial blocks
}

TEST_CASE("cuda depthwise backward skips the null outputs") {
  const auto s = make(2, 9, 9, 12, 3, 1, 1);
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
  const auto x = random_floats(nx, 7), w = random_floats(9 * s.c, 8), dy = random_floats(ny, 9);
  const auto db0 = random_floats(s.c, 10);
  std::vector<float> db_cpu = db0;
  osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, nullptr,
                                         db_cpu.data());
  DeviceBuffer<float> x_d(x), w_d(w), dy_d(dy), db(db0);
  osprey::cuda::depthwise_conv2d_backward(s, x_d.ptr, w_d.ptr, dy_d.ptr, nullptr, nullptr, db.ptr,
                                          nullptr);
  REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
  // Empty batches launch nothing and leave the buffers alone.
  auto e = s;
  e.n = 0;
  osprey::cuda::depthwise_conv2d_forward(e, x_d.ptr, w_d.ptr, nullptr, nullptr, nullptr);
  osprey::cuda::depthwise_conv2d_backward(e, x_d.ptr, w_d.ptr, dy_d.ptr, nullptr, nullptr, db.ptr,
                                          nullptr);
  REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
}
