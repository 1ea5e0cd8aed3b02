// The fused inference kernel (depthwise + bias + activation, then 1x1 projection + bias +
// residual) on the GPU against the CPU kernel: odd shapes, both strides, widths that take each
// tile size (8 pixels, and 2 pixels above 1,536 channels), pixel counts that end mid-tile.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "kernels/cpu/depthwise_project.h"
#include "kernels/cuda/depthwise_project.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::Activation;
using osprey::DepthwiseShape;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

void check(const DepthwiseShape& s, int k, Activation act, bool residual, bool biases,
           uint32_t seed) {
  INFO(s.n << "x" << s.h << "x" << s.w << "x" << s.c << " stride " << s.stride << " -> " << k
           << (residual ? " residual" : "") << (biases ? " biases" : ""));
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * k;
  const auto x = random_floats(nx, seed, -2.0f, 4.0f),
             dw_w = random_floats(9 * size_t(s.c), seed + 1),
             dw_b = random_floats(size_t(s.c), seed + 2),
             pw = random_floats(size_t(s.c) * k, seed + 3), pb = random_floats(size_t(k), seed + 4),
             res = random_floats(ny, seed + 5);
  std::vector<float> want(ny);
  osprey::cpu::depthwise_project_forward(
      s, k, x.data(), dw_w.data(), biases ? dw_b.data() : nullptr, act, pw.data(),
      biases ? pb.data() : nullptr, residual ? res.data() : nullptr, want.data());
  DeviceBuffer<float> d_x(x), d_dw_w(dw_w), d_dw_b(dw_b), d_pw(pw), d_pb(pb), d_res(res), d_y(ny);
  d_y.poison();
  osprey::cuda::depthwise_project_forward(s, k, d_x.ptr, d_dw_w.ptr, biases ? d_dw_b.ptr : nullptr,
                                          act, d_pw.ptr, biases ? d_pb.ptr : nullptr,
                                          residual ? d_res.ptr : nullptr, d_y.ptr, nullptr);
  REQUIRE(rel_l2(d_y.download(), want) < 1e-5);
}

}  // namespace

TEST_CASE("cuda fused depthwise + projection matches the cpu kernel") {
  uint32_t seed = 100;
  check({2, 7, 9, 19, 3, 3, 1, 1}, 13, Activation::relu6, false, true, seed += 10);
  check({3, 9, 6, 33, 3, 3, 2, 1}, 7, Activation::relu6, false, true, seed += 10);
  check({1, 5, 5, 24, 3, 3, 1, 0}, 5, Activation::relu, false, false, seed += 10);
  check({2, 1, 11, 17, 3, 3, 1, 1}, 17, Activation::none, true, true, seed += 10);
  check({4, 8, 8, 96, 3, 3, 1, 1}, 24, Activation::relu6, true, true, seed += 10);
  check({8, 7, 7, 960, 3, 3, 1, 1}, 320, Activation::relu6, false, true, seed += 10);
  check({2, 5, 3, 1600, 3, 3, 2, 1}, 300, Activation::relu6, false, true, seed += 10);
}
