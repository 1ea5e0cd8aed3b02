// The CUDA bf16 kernels against the CPU bf16 overloads (float arithmetic on the same bf16
// values, one rounding per stored value): elementwise ops and casts, dense convolutions (1x1 and
// 3x3 through bf16 tensor-core GEMMs), depthwise convolutions and BatchNorm. Stored bf16
// results may differ by one rounding where the two float sums straddle a rounding boundary,
// which moves the relative L2 error by ~1e-5; 1e-3 still catches any wrong term. fp32
// outputs (weight, gamma, beta gradients, statistics) sum exact bf16 products in float: 1e-5.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/depthwise.h"
#include "kernels/cuda/elementwise.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::Activation;
using osprey::bf16;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

constexpr double kStoredTol = 1e-3, kSumTol = 1e-5;

std::vector<bf16> random_bf16(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  const std::vector<float> f = random_floats(n, seed, lo, hi);
  std::vector<bf16> h(n);
  osprey::cpu::cast(int64_t(n), f.data(), h.data());
  return h;
}

std::vector<float> widen(const std::vector<bf16>& h) {
  std::vector<float> f(h.size());
  osprey::cpu::cast(int64_t(h.size()), h.data(), f.data());
  return f;
}

}  // namespace

TEST_CASE("cuda bf16 casts, add and axpy match the cpu bit for bit") {
  const size_t n = 100003;
  const auto f = random_floats(n, 1, -1e3f, 1e3f);
  const auto a = random_bf16(n, 2), b = random_bf16(n, 3);
  std::vector<bf16> h_cpu(n), sum_cpu(n), acc_cpu = b;
  std::vector<float> f_cpu(n);
  osprey::cpu::cast(int64_t(n), f.data(), h_cpu.data());
  osprey::cpu::cast(int64_t(n), a.data(), f_cpu.data());
  osprey::cpu::add(int64_t(n), a.data(), b.data(), sum_cpu.data());
  osprey::cpu::axpy(int64_t(n), 0.3f, a.data(), acc_cpu.data());
  DeviceBuffer<float> f_d(f), back(n);
  DeviceBuffer<bf16> h(n), a_d(a), b_d(b), sum(n), acc(b);
  h.poison(), back.poison(), sum.poison();
  osprey::cuda::cast(int64_t(n), f_d.ptr, h.ptr, nullptr);
  osprey::cuda::cast(int64_t(n), a_d.ptr, back.ptr, nullptr);
  osprey::cuda::add(int64_t(n), a_d.ptr, b_d.ptr, sum.ptr, nullptr);
  osprey::cuda::axpy(int64_t(n), 0.3f, a_d.ptr, acc.ptr, nullptr);
  const auto h_gpu = h.download(), sum_gpu = sum.download(), acc_gpu = acc.download();
  REQUIRE(back.download() == f_cpu);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(h_gpu[i].bits == h_cpu[i].bits);
    REQUIRE(sum_gpu[i].bits == sum_cpu[i].bits);
    REQUIRE(acc_gpu[i].bits == acc_cpu[i].bits);
  }
}

TEST_CASE("cuda bf16 dense convolutions match the cpu") {
  struct Case {
    osprey::Conv2dShape s;
    bool bias;
  };
  uint32_t seed = 10;
  for (const Case& k : {Case{{3, 7, 5, 24, 40, 1, 1, 1, 0}, false},  // 1x1: one GEMM
                        Case{{2, 5, 9, 13, 7, 1, 1, 1, 0}, true},    // odd widths, bias
                        Case{{4, 11, 9, 3, 16, 3, 3, 2, 1}, false},  // a stem: im2col, stride 2
                        Case{{2, 6, 7, 5, 9, 3, 3, 1, 1}, true}}) {  // 3x3 with bias
    const auto& s = k.s;
    INFO(s.h << "x" << s.w << "x" << s.c << " -> " << s.k << " k" << s.kh << " s" << s.stride
             << (k.bias ? " bias" : ""));
    const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.k;
    const size_t nw = size_t(s.k) * s.kh * s.kw * s.c;
    const auto x = random_bf16(nx, seed++), dy = random_bf16(ny, seed++);
    const auto w = random_floats(nw, seed++), b = random_floats(size_t(s.k), seed++);
    const auto dw0 = random_floats(nw, seed++), db0 = random_floats(size_t(s.k), seed++);
    std::vector<bf16> y_cpu(ny), dx_cpu(nx);
    std::vector<float> dw_cpu = dw0, db_cpu = db0;
    osprey::cpu::conv2d_forward(s, x.data(), w.data(), k.bias ? b.data() : nullptr, y_cpu.data());
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx_cpu.data(), dw_cpu.data(),
                                 db_cpu.data());
    DeviceBuffer<bf16> x_d(x), dy_d(dy), y(ny), dx(nx);
    DeviceBuffer<float> w_d(w), b_d(b), dw(dw0), db(db0);
    y.poison(), dx.poison();
    osprey::cuda::conv2d_forward(s, x_d.ptr, w_d.ptr, k.bias ? b_d.ptr : nullptr, y.ptr, nullptr);
    osprey::cuda::conv2d_backward(s, x_d.ptr, w_d.ptr, dy_d.ptr, dx.ptr, dw.ptr, db.ptr, nullptr);
    REQUIRE(rel_l2(widen(y.download()), widen(y_cpu)) < kStoredTol);
    REQUIRE(rel_l2(widen(dx.download()), widen(dx_cpu)) < kStoredTol);
    REQUIRE(rel_l2(dw.download(), dw_cpu) < kSumTol);
    REQUIRE(rel_l2(db.download(), db_cpu) < kSumTol);
  }
}

TEST_CASE("cuda bf16 depthwise convolutions match the cpu") {
  uint32_t seed = 100;
  // 3x3 stride 1 and 2 with 4-channel vectors, an odd channel count (scalar path), and a 5x5
  // (generic kernels).
  for (const osprey::DepthwiseShape& s : {osprey::DepthwiseShape{4, 12, 12, 32, 3, 3, 1, 1},
                                          osprey::DepthwiseShape{3, 13, 11, 48, 3, 3, 2, 1},
                                          osprey::DepthwiseShape{2, 9, 7, 19, 3, 3, 1, 1},
                                          osprey::DepthwiseShape{2, 9, 10, 8, 5, 5, 2, 2}}) {
    INFO(s.h << "x" << s.w << "x" << s.c << " k" << s.kh << " s" << s.stride);
    const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
    const size_t nw = size_t(s.kh) * s.kw * s.c;
    const auto x = random_bf16(nx, seed++), dy = random_bf16(ny, seed++);
    const auto w = random_floats(nw, seed++), b = random_floats(size_t(s.c), seed++);
    const auto dw0 = random_floats(nw, seed++), db0 = random_floats(size_t(s.c), seed++);
    std::vector<bf16> y_cpu(ny), dx_cpu(nx);
    std::vector<float> dw_cpu = dw0, db_cpu = db0;
    osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), b.data(), y_cpu.data());
    osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx_cpu.data(),
                                           dw_cpu.data(), db_cpu.data());
    DeviceBuffer<bf16> x_d(x), dy_d(dy), y(ny), dx(nx);
    DeviceBuffer<float> w_d(w), b_d(b), dw(dw0), db(db0);
    y.poison(), dx.poison();
    osprey::cuda::depthwise_conv2d_forward(s, x_d.ptr, w_d.ptr, b_d.ptr, y.ptr, nullptr);
    osprey::cuda::depthwise_conv2d_backward(s, x_d.ptr, w_d.ptr, dy_d.ptr, dx.ptr, dw.ptr, db.ptr,
                                            nullptr);
    REQUIRE(rel_l2(widen(y.download()), widen(y_cpu)) < kStoredTol);
    REQUIRE(rel_l2(widen(dx.download()), widen(dx_cpu)) < kStoredTol);
    REQUIRE(rel_l2(dw.download(), dw_cpu) < kSumTol);
    REQUIRE(rel_l2(db.download(), db_cpu) < kSumTol);
  }
}

TEST_CASE("cuda bf16 batchnorm matches the cpu, training and eval mode") {
  uint32_t seed = 200;
  for (bool batch_stats : {true, false})
    for (const auto& [m, c] : {std::pair<int64_t, int>{1000, 32}, std::pair<int64_t, int>{77, 13}})
      for (Activation act : {Activation::relu6, Activation::none}) {
        INFO("m " << m << " c " << c << " batch_stats " << batch_stats);
        const size_t n = size_t(m) * c, cs = size_t(c);
        const auto x = random_bf16(n, seed++, -2.0f, 6.0f), dy = random_bf16(n, seed++);
        const auto gamma = random_floats(size_t(c), seed++, 0.5f, 2.0f);
        const auto beta = random_floats(size_t(c), seed++, 0.0f, 4.0f);
        std::vector<float> mean(cs), var(cs), dg_cpu(cs, 0.1f), db_cpu(cs, 0.2f);
        osprey::cpu::batchnorm_stats(m, c, x.data(), mean.data(), var.data());
        std::vector<bf16> y_cpu(n), dx_cpu(n);
        osprey::cpu::batchnorm_act_forward(m, c, x.data(), mean.data(), var.data(), gamma.data(),
                                           beta.data(), 1e-5f, act, y_cpu.data());
        osprey::cpu::batchnorm_act_backward(m, c, x.data(), dy.data(), mean.data(), var.data(),
                                            gamma.data(), beta.data(), 1e-5f, act, batch_stats,
                                            dx_cpu.data(), dg_cpu.data(), db_cpu.data());
        DeviceBuffer<bf16> x_d(x), dy_d(dy), y(n), dx(n);
        DeviceBuffer<float> g_d(gamma), b_d(beta), mean_d(cs), var_d(cs),
            dg(std::vector<float>(cs, 0.1f)), db(std::vector<float>(cs, 0.2f));
        y.poison(), dx.poison(), mean_d.poison(), var_d.poison();
        osprey::cuda::batchnorm_stats(m, c, x_d.ptr, mean_d.ptr, var_d.ptr, nullptr);
        REQUIRE(rel_l2(mean_d.download(), mean) < kSumTol);
        REQUIRE(rel_l2(var_d.download(), var) < kSumTol);
        // The rest from the cpu's statistics, so each kernel is compared on its own.
        mean_d.upload(mean), var_d.upload(var);
        osprey::cuda::batchnorm_act_forward(m, c, x_d.ptr, mean_d.ptr, var_d.ptr, g_d.ptr, b_d.ptr,
                                            1e-5f, act, y.ptr, nullptr);
        osprey::cuda::batchnorm_act_backward(m, c, x_d.ptr, dy_d.ptr, mean_d.ptr, var_d.ptr,
                                             g_d.ptr, b_d.ptr, 1e-5f, act, batch_stats, dx.ptr,
                                             dg.ptr, db.ptr, nullptr);
        REQUIRE(rel_l2(widen(y.download()), widen(y_cpu)) < kStoredTol);
        REQUIRE(rel_l2(widen(dx.download()), widen(dx_cpu)) < kStoredTol);
        REQUIRE(rel_l2(dg.download(), dg_cpu) < kSumTol);
        REQUIRE(rel_l2(db.download(), db_cpu) < kSumTol);
      }
}
