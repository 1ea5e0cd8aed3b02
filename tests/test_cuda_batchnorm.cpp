// CUDA BatchNorm (+ fused activation) against the CPU op: statistics, forward (in place too),
// training- and eval-mode backward with accumulated dgamma/dbeta, and the running statistics.
#include <catch2/catch.hpp>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cuda/batchnorm.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::Activation;
using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

constexpr float kEps = 1e-5f;
constexpr Activation kActs[] = {Activation::none, Activation::relu, Activation::relu6};

struct Case {
  int64_t m;  // N * H * W
  int c;
};

// Odd row counts (batch 1 of odd images) and the channel counts of the kernel paths, plus two
// shapes large enough for many partial blocks.
const Case kCases[] = {{1, 1},      {35, 1},    {48, 3},    {63, 13},           {45, 32},
                       {77, 36},    {225, 144}, {4913, 13}, {8 * 28 * 28, 144}, {2 * 7 * 7, 960},
                       {100000, 32}};

void check_case(const Case& k, Activation act, bool batch_stats, uint32_t seed) {
  INFO("m " << k.m << " c " << k.c << " act " << int(act) << " batch_stats " << batch_stats);
  const size_t n = size_t(k.m) * k.c;
  // An offset mean (|mean| >> std in some channels) exercises the shifted statistics, and a
  // range around [0, 6] exercises both clamps of relu6.
  const auto x = random_floats(n, seed, 1.0f, 4.0f), dy = random_floats(n, seed + 1);
  const auto gamma = random_floats(k.c, seed + 2, 0.5f, 3.0f);
  const auto beta = random_floats(k.c, seed + 3, -1.0f, 4.0f);
  const auto dg0 = random_floats(k.c, seed + 4), db0 = random_floats(k.c, seed + 5);

  std::vector<float> mean_cpu(k.c), var_cpu(k.c), y_cpu(n), dx_cpu(n), dg_cpu = dg0, db_cpu = db0;
  osprey::cpu::batchnorm_stats(k.m, k.c, x.data(), mean_cpu.data(), var_cpu.data());
  osprey::cpu::batchnorm_act_forward(k.m, k.c, x.data(), mean_cpu.data(), var_cpu.data(),
                                     gamma.data(), beta.data(), kEps, act, y_cpu.data());
  osprey::cpu::batchnorm_act_backward(k.m, k.c, x.data(), dy.data(), mean_cpu.data(),
                                      var_cpu.data(), gamma.data(), beta.data(), kEps, act,
                                      batch_stats, dx_cpu.data(), dg_cpu.data(), db_cpu.data());

  DeviceBuffer<float> x_d(x), dy_d(dy), g_d(gamma), b_d(beta), mean(k.c), var(k.c), y(n), dx(n),
      dg(dg0), db(db0);
  mean.poison(), var.poison(), y.poison(), dx.poison();
  osprey::cuda::batchnorm_stats(k.m, k.c, x_d.ptr, mean.ptr, var.ptr, nullptr);
  REQUIRE(rel_l2(mean.download(), mean_cpu) < 1e-6);
  REQUIRE(rel_l2(var.download(), var_cpu) < 1e-5);
  // The rest runs from the CPU's statistics so each kernel is compared on its own.
  mean.upload(mean_cpu), var.upload(var_cpu);
  osprey::cuda::batchnorm_act_forward(k.m, k.c, x_d.ptr, mean.ptr, var.ptr, g_d.ptr, b_d.ptr, kEps,
                                      act, y.ptr, nullptr);
  REQUIRE(rel_l2(y.download(), y_cpu) < 1e-5);
  // The CUDA backward recomputes the mask from x, gamma and beta; the CPU reads it from y_cpu.
  osprey::cuda::batchnorm_act_backward(k.m, k.c, x_d.ptr, dy_d.ptr, mean.ptr, var.ptr, g_d.ptr,
                                       b_d.ptr, kEps, act, batch_stats, dx.ptr, dg.ptr, db.ptr,
                                       nullptr);
  REQUIRE(rel_l2(dx.download(), dx_cpu) < 1e-5);
  REQUIRE(rel_l2(dg.download(), dg_cpu) < 1e-5);
  REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
}

}  // namespace

TEST_CASE("cuda batchnorm training mode matches the CPU op") {
  uint32_t seed = 1;
  for (const Case& k : kCases)
    for (Activation a : kActs) check_case(k, a, true, seed += 10);
}

TEST_CASE("cuda batchnorm eval-mode backward matches the CPU op") {
  uint32_t seed = 1000;
  for (const Case& k : kCases)
    for (Activation a : kActs) check_case(k, a, false, seed += 10);
}

TEST_CASE("cuda batchnorm forward in place and backward without dx or parameter gradients") {
  for (const Case& k : {Case{63, 13}, Case{300, 36}}) {
    INFO("m " << k.m << " c " << k.c);
    const size_t n = size_t(k.m) * k.c;
    const auto x = random_floats(n, 77, -2.0f, 8.0f), dy = random_floats(n, 78);
    const auto gamma = random_floats(k.c, 79), beta = random_floats(k.c, 80);
    std::vector<float> mean(k.c), var(k.c), y_cpu(n), dx_cpu(n), db_cpu(k.c, 0.5f);
    osprey::cpu::batchnorm_stats(k.m, k.c, x.data(), mean.data(), var.data());
    osprey::cpu::batchnorm_act_forward(k.m, k.c, x.data(), mean.data(), var.data(), gamma.data(),
                                       beta.data(), kEps, Activation::relu6, y_cpu.data());
    DeviceBuffer<float> xy(x), mean_d(mean), var_d(var), g_d(gamma), b_d(beta);
    osprey::cuda::batchnorm_act_forward(k.m, k.c, xy.ptr, mean_d.ptr, var_d.ptr, g_d.ptr, b_d.ptr,
                                        kEps, Activation::relu6, xy.ptr, nullptr);
    REQUIRE(rel_l2(xy.download(), y_cpu) < 1e-5);

    // dx only (training mode), then dbeta only; null gamma and beta mean 1 and 0.
    osprey::cpu::batchnorm_act_backward(k.m, k.c, x.data(), dy.data(), mean.data(), var.data(),
                                        nullptr, nullptr, kEps, Activation::relu6, true,
                                        dx_cpu.data(), nullptr, nullptr);
    osprey::cpu::batchnorm_act_backward(k.m, k.c, x.data(), dy.data(), mean.data(), var.data(),
                                        nullptr, nullptr, kEps, Activation::relu6, true, nullptr,
                                        nullptr, db_cpu.data());
    DeviceBuffer<float> x_d(x), dy_d(dy), dx(n), db(std::vector<float>(k.c, 0.5f));
    dx.poison();
    osprey::cuda::batchnorm_act_backward(k.m, k.c, x_d.ptr, dy_d.ptr, mean_d.ptr, var_d.ptr,
                                         nullptr, nullptr, kEps, Activation::relu6, true, dx.ptr,
                                         nullptr, nullptr, nullptr);
    osprey::cuda::batchnorm_act_backward(k.m, k.c, x_d.ptr, dy_d.ptr, mean_d.ptr, var_d.ptr,
                                         nullptr, nullptr, kEps, Activation::relu6, true, nullptr,
                                         nullptr, db.ptr, nullptr);
    REQUIRE(rel_l2(dx.download(), dx_cpu) < 1e-5);
    REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
  }
}

TEST_CASE("cuda batchnorm running statistics match the CPU op") {
  for (int64_t m : {int64_t(1), int64_t(2), int64_t(1000)}) {
    const int c = 37;
    const auto mean = random_floats(c, 5), var = random_floats(c, 6, 0.0f, 2.0f);
    const auto rm0 = random_floats(c, 7), rv0 = random_floats(c, 8, 0.5f, 1.5f);
    std::vector<float> rm_cpu = rm0, rv_cpu = rv0;
    osprey::cpu::batchnorm_update_running(m, c, mean.data(), var.data(), 0.1f, rm_cpu.data(),
                                          rv_cpu.data());
    DeviceBuffer<float> mean_d(mean), var_d(var), rm(rm0), rv(rv0);
    osprey::cuda::batchnorm_update_running(m, c, mean_d.ptr, var_d.ptr, 0.1f, rm.ptr, rv.ptr,
                                           nullptr);
    REQUIRE(rel_l2(rm.download(), rm_cpu) < 1e-6);
    REQUIRE(rel_l2(rv.download(), rv_cpu) < 1e-6);
  }
}

TEST_CASE("cuda batchnorm statistics of an empty batch are zeros") {
  DeviceBuffer<float> x(1), mean(5), var(5);
  mean.poison(), var.poison();
  osprey::cuda::batchnorm_stats(0, 5, x.ptr, mean.ptr, var.ptr, nullptr);
  REQUIRE(mean.download() == std::vector<float>(5, 0.0f));
  REQUIRE(var.download() == std::vector<float>(5, 0.0f));
}

// Synchronized BatchNorm's split backward against the CPU op's, with a "sum over processes"
// that triples the sums and doubles the row count (any change of both must reach dx the same
// way on both devices).
TEST_CASE("cuda batchnorm backward in two halves matches the cpu's") {
  for (const Case& k : {Case{63, 13}, Case{225, 144}, Case{4913, 32}}) {
    INFO("m " << k.m << " c " << k.c);
    const size_t n = size_t(k.m) * k.c;
    const auto x = random_floats(n, 501, 1.0f, 4.0f), dy = random_floats(n, 502);
    const auto gamma = random_floats(k.c, 503, 0.5f, 3.0f), beta = random_floats(k.c, 504);
    std::vector<float> mean(k.c), var(k.c), dx_cpu(n), dg_cpu(k.c, 0.1f), db_cpu(k.c, 0.2f);
    osprey::cpu::batchnorm_stats(k.m, k.c, x.data(), mean.data(), var.data());
    std::vector<double> sums_cpu(2 * size_t(k.c));
    osprey::cpu::batchnorm_act_backward_sums(k.m, k.c, x.data(), dy.data(), mean.data(), var.data(),
                                             gamma.data(), beta.data(), kEps, Activation::relu6,
                                             sums_cpu.data(), dg_cpu.data(), db_cpu.data());
    for (double& v : sums_cpu) v *= 3.0;
    osprey::cpu::batchnorm_act_backward_dx(k.m, k.c, x.data(), dy.data(), mean.data(), var.data(),
                                           gamma.data(), beta.data(), kEps, Activation::relu6,
                                           sums_cpu.data(), 2 * k.m, dx_cpu.data());
    DeviceBuffer<float> x_d(x), dy_d(dy), g_d(gamma), b_d(beta), mean_d(mean), var_d(var), dx(n),
        dg(std::vector<float>(k.c, 0.1f)), db(std::vector<float>(k.c, 0.2f));
    DeviceBuffer<double> sums(2 * size_t(k.c));
    dx.poison(), sums.poison();
    osprey::cuda::batchnorm_act_backward_sums(k.m, k.c, x_d.ptr, dy_d.ptr, mean_d.ptr, var_d.ptr,
                                              g_d.ptr, b_d.ptr, kEps, Activation::relu6, sums.ptr,
                                              dg.ptr, db.ptr, nullptr);
    std::vector<double> s = sums.download();
    for (double& v : s) v *= 3.0;
    sums.upload(s);
    osprey::cuda::batchnorm_act_backward_dx(k.m, k.c, x_d.ptr, dy_d.ptr, mean_d.ptr, var_d.ptr,
                                            g_d.ptr, b_d.ptr, kEps, Activation::relu6, sums.ptr,
                                            2 * k.m, dx.ptr, nullptr);
    REQUIRE(rel_l2(dx.download(), dx_cpu) < 1e-5);
    REQUIRE(rel_l2(dg.download(), dg_cpu) < 1e-5);
    REQUIRE(rel_l2(db.download(), db_cpu) < 1e-5);
  }
}
