#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "op_reference.h"

using osprey::Activation;
using namespace osprey_test;
namespace k = osprey::cpu;

namespace {

constexpr float kEps = 1e-5f;
constexpr Activation kActs[] = {Activation::none, Activation::relu, Activation::relu6};

double ref_act(Activation a, double v) {
  if (a == Activation::relu) return std::max(v, 0.0);
  if (a == Activation::relu6) return std::min(std::max(v, 0.0), 6.0);
  return v;
}

const char* act_name(Activation a) {
  return a == Activation::relu ? "relu" : a == Activation::relu6 ? "relu6" : "none";
}

struct Case {
  int64_t m;  // N * H * W
  int c;
};
// batch 1 and 3 of 5x7 and 4x4 images; 1, 3, 5 and 17 channels.
const Case kCases[] = {{35, 1}, {48, 3}, {35, 5}, {105, 17}, {16, 17}};

// Two-pass per-channel mean and biased variance, in double.
void ref_stats(const Case& s, const std::vector<double>& x, std::vector<double>& mean,
               std::vector<double>& var) {
  mean.assign(s.c, 0.0), var.assign(s.c, 0.0);
  for (int64_t r = 0; r < s.m; ++r)
    for (int j = 0; j < s.c; ++j) mean[j] += x[r * s.c + j] / s.m;
  for (int64_t r = 0; r < s.m; ++r)
    for (int j = 0; j < s.c; ++j) var[j] += (x[r * s.c + j] - mean[j]) * (x[r * s.c + j] - mean[j]);
  for (double& v : var) v /= s.m;
}

// act((x - mean) / sqrt(var + eps) * gamma + beta) with the given statistics.
std::vector<double> ref_forward(const Case& s, const std::vector<double>& x,
                                const std::vector<double>& mean, const std::vector<double>& var,
                                const std::vector<double>& gamma, const std::vector<double>& beta,
                                Activation a) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < s.m; ++r)
    for (int j = 0; j < s.c; ++j) {
      const double z = (x[r * s.c + j] - mean[j]) / std::sqrt(var[j] + kEps) * gamma[j] + beta[j];
      y[r * s.c + j] = ref_act(a, z);
    }
  return y;
}

// Training mode: the statistics are those of x itself.
std::vector<double> ref_forward_train(const Case& s, const std::vector<double>& x,
                                      const std::vector<double>& gamma,
                                      const std::vector<double>& beta, Activation a) {
  std::vector<double> mean, var;
  ref_stats(s, x, mean, var);
  return ref_forward(s, x, mean, var, gamma, beta, a);
}

// Smallest distance of a pre-activation to a kink of a (0 for relu, 0 and 6 for relu6).
double kink_distance(const Case& s, const std::vector<double>& x, const std::vector<double>& gamma,
                     const std::vector<double>& beta, Activation a) {
  if (a == Activation::none) return INFINITY;
  const auto z = ref_forward_train(s, x, gamma, beta, Activation::none);
  double d = INFINITY;
  for (double v : z) d = std::min({d, std::abs(v), a == Activation::relu6 ? std::abs(v - 6) : d});
  return d;
}

struct Data {
  std::vector<float> x, gamma, beta, r;
};

// gamma in [2, 4] and beta in [0, 3] put the pre-activations over about [-5, 10], so relu6
// clamps on both sides. Seeds are skipped until no pre-activation lies within 1e-3 of a kink,
// far outside the finite-difference step.
Data make_data(const Case& s, Activation a, uint32_t seed) {
  for (;; seed += 1000) {
    Data d{random_floats(s.m * s.c, seed, -1.0f, 3.0f), random_floats(s.c, seed + 1, 2.0f, 4.0f),
           random_floats(s.c, seed + 2, 0.0f, 3.0f), random_floats(s.m * s.c, seed + 3)};
    if (kink_distance(s, to_double(d.x), to_double(d.gamma), to_double(d.beta), a) > 1e-3) return d;
  }
}

}  // namespace

TEST_CASE("batchnorm_stats matches a two-pass double reference", "[batchnorm]") {
  uint32_t seed = 1;
  for (const Case& s : kCases) {
    INFO("m " << s.m << " c " << s.c);
    const auto x = random_floats(s.m * s.c, seed++, -1.0f, 3.0f);
    std::vector<float> mean(s.c), var(s.c);
    k::batchnorm_stats(s.m, s.c, x.data(), mean.data(), var.data());
    std::vector<double> rm, rv;
    ref_stats(s, to_double(x), rm, rv);
    require_close(mean, rm, 1e-5, "mean");
    require_close(var, rv, 1e-5, "var");
  }
  // A large mean over a small spread: naive float sums of squares lose every digit here.
  const Case s{4096, 3};
  auto x = random_floats(s.m * s.c, 99, -0.01f, 0.01f);
  for (float& v : x) v += 1000.0f;
  std::vector<float> mean(s.c), var(s.c);
  k::batchnorm_stats(s.m, s.c, x.data(), mean.data(), var.data());
  std::vector<double> rm, rv;
  ref_stats(s, to_double(x), rm, rv);
  require_close(mean, rm, 1e-6, "mean, offset data");
  require_close(var, rv, 1e-5, "var, offset data");
}

TEST_CASE("batchnorm_act_forward matches the reference, y aliasing x", "[batchnorm]") {
  uint32_t seed = 10;
  for (const Case& s : kCases)
    for (Activation a : kActs) {
      INFO("m " << s.m << " c " << s.c << " " << act_name(a));
      const auto x = random_floats(s.m * s.c, seed++, -2.0f, 4.0f);
      // Statistics given, not those of x: the affine part is checked on its own.
      const auto mean = random_floats(s.c, seed++), var = random_floats(s.c, seed++, 0.2f, 2.0f);
      const auto gamma = random_floats(s.c, seed++, 0.5f, 4.0f), beta = random_floats(s.c, seed++);
      std::vector<float> y(x.size(), NAN);
      k::batchnorm_act_forward(s.m, s.c, x.data(), mean.data(), var.data(), gamma.data(),
                               beta.data(), kEps, a, y.data());
      const auto want = ref_forward(s, to_double(x), to_double(mean), to_double(var),
                                    to_double(gamma), to_double(beta), a);
      require_close(y, want, 1e-5, "y");
      std::vector<float> inplace = x;
      k::batchnorm_act_forward(s.m, s.c, inplace.data(), mean.data(), var.data(), gamma.data(),
                               beta.data(), kEps, a, inplace.data());
      REQUIRE(inplace == y);
    }
}

TEST_CASE("batchnorm_act_backward through batch statistics matches finite differences",
          "[batchnorm]") {
  uint32_t seed = 100;
  for (const Case& s : kCases)
    for (Activation a : kActs) {
      INFO("m " << s.m << " c " << s.c << " " << act_name(a));
      const Data d = make_data(s, a, seed++);
      std::vector<float> mean(s.c), var(s.c), dx(d.x.size(), NAN);
      k::batchnorm_stats(s.m, s.c, d.x.data(), mean.data(), var.data());
      // Accumulated: start from known values.
      std::vector<float> dgamma(s.c, 0.25f), dbeta(s.c, -0.5f);
      k::batchnorm_act_backward(s.m, s.c, d.x.data(), d.r.data(), mean.data(), var.data(),
                                d.gamma.data(), d.beta.data(), kEps, a, true, dx.data(),
                                dgamma.data(), dbeta.data());
      auto xd = to_double(d.x), gd = to_double(d.gamma), bd = to_double(d.beta);
      const auto rd = to_double(d.r);
      auto loss = [&] { return dot(ref_forward_train(s, xd, gd, bd, a), rd); };
      require_close(dx, numeric_grad(loss, xd, 1e-5), 1e-5, "dx");
      require_close(minus(dgamma, 0.25f), numeric_grad(loss, gd, 1e-5), 1e-5, "dgamma");
      require_close(minus(dbeta, -0.5f), numeric_grad(loss, bd, 1e-5), 1e-5, "dbeta");
    }
}

TEST_CASE("batchnorm_act_backward with fixed statistics matches finite differences",
          "[batchnorm]") {
  uint32_t seed = 200;
  for (const Case& s : kCases)
    for (Activation a : kActs) {
      INFO("m " << s.m << " c " << s.c << " " << act_name(a));
      // Statistics near (but not equal to) the batch's: constants of the loss. As for the
      // batch statistics, data with a pre-activation near a kink is skipped.
      Data d;
      std::vector<float> mean(s.c), var(s.c);
      for (uint32_t sd = seed++;; sd += 1000) {
        d = make_data(s, a, sd);
        std::vector<double> rm, rv;
        ref_stats(s, to_double(d.x), rm, rv);
        for (int j = 0; j < s.c; ++j) mean[j] = float(rm[j] + 0.05), var[j] = float(rv[j] * 1.1);
        const auto z = ref_forward(s, to_double(d.x), to_double(mean), to_double(var),
                                   to_double(d.gamma), to_double(d.beta), Activation::none);
        if (std::none_of(z.begin(), z.end(),
                         [](double v) { return std::abs(v) < 1e-3 || std::abs(v - 6.0) < 1e-3; }))
          break;
      }
      const auto md = to_double(mean), vd = to_double(var), rd = to_double(d.r);
      auto xd = to_double(d.x), gd = to_double(d.gamma), bd = to_double(d.beta);
      auto loss = [&] { return dot(ref_forward(s, xd, md, vd, gd, bd, a), rd); };

      std::vector<float> dx(d.x.size(), NAN), dgamma(s.c, 1.0f), dbeta(s.c, 2.0f);
      k::batchnorm_act_backward(s.m, s.c, d.x.data(), d.r.data(), mean.data(), var.data(),
                                d.gamma.data(), d.beta.data(), kEps, a, false, dx.data(),
                                dgamma.data(), dbeta.data());
      require_close(dx, numeric_grad(loss, xd, 1e-5), 1e-5, "dx");
      require_close(minus(dgamma, 1.0f), numeric_grad(loss, gd, 1e-5), 1e-5, "dgamma");
      require_close(minus(dbeta, 2.0f), numeric_grad(loss, bd, 1e-5), 1e-5, "dbeta");
    }
}

TEST_CASE("batchnorm_act_backward skips null outputs", "[batchnorm]") {
  const Case s{105, 17};
  for (bool batch_stats : {true, false}) {
    INFO("batch_stats " << batch_stats);
    const Data d = make_data(s, Activation::relu6, 300);
    std::vector<float> mean(s.c), var(s.c);
    k::batchnorm_stats(s.m, s.c, d.x.data(), mean.data(), var.data());
    auto run = [&](float* dx, float* dg, float* db) {
      k::batchnorm_act_backward(s.m, s.c, d.x.data(), d.r.data(), mean.data(), var.data(),
                                d.gamma.data(), d.beta.data(), kEps, Activation::relu6, batch_stats,
                                dx, dg, db);
    };
    std::vector<float> dx(d.x.size()), dg(s.c), db(s.c);
    run(dx.data(), dg.data(), db.data());
    std::vector<float> dx2(d.x.size(), NAN), dg2(s.c), db2(s.c);
    run(dx2.data(), nullptr, nullptr);
    REQUIRE(dx2 == dx);
    run(nullptr, dg2.data(), nullptr);
    REQUIRE(dg2 == dg);
    run(nullptr, nullptr, db2.data());
    REQUIRE(db2 == db);
  }
}

// Synchronized BatchNorm's halves: two "processes" holding the first and last rows of one
// batch whose statistics they share give that batch's gradient once their sums are added; on
// one process the halves are the fused backward, bit for bit.
TEST_CASE("batchnorm_act_backward_sums and _dx split the backward across processes",
          "[batchnorm]") {
  const Case s{105, 17};
  for (Activation a : kActs) {
    INFO(act_name(a));
    const Data d = make_data(s, a, 500);
    std::vector<float> mean(s.c), var(s.c);
    k::batchnorm_stats(s.m, s.c, d.x.data(), mean.data(), var.data());
    std::vector<float> dx(d.x.size()), dg(s.c, 0.5f), db(s.c, -1.0f);
    k::batchnorm_act_backward(s.m, s.c, d.x.data(), d.r.data(), mean.data(), var.data(),
                              d.gamma.data(), d.beta.data(), kEps, a, true, dx.data(), dg.data(),
                              db.data());
    auto halves = [&](int64_t r0, int64_t r1, const std::vector<double>& add, float* out,
                      std::vector<float>& dgh, std::vector<float>& dbh) {
      std::vector<double> sums(2 * size_t(s.c));
      const float* x = d.x.data() + r0 * s.c;
      const float* dy = d.r.data() + r0 * s.c;
      k::batchnorm_act_backward_sums(r1 - r0, s.c, x, dy, mean.data(), var.data(), d.gamma.data(),
                                     d.beta.data(), kEps, a, sums.data(), dgh.data(), dbh.data());
      std::vector<double> own = sums;
      for (size_t i = 0; i < sums.size(); ++i) sums[i] += add[i];
      k::batchnorm_act_backward_dx(r1 - r0, s.c, x, dy, mean.data(), var.data(), d.gamma.data(),
                                   d.beta.data(), kEps, a, sums.data(), s.m, out);
      return own;
    };
    std::vector<float> one(d.x.size()), dg1(s.c, 0.5f), db1(s.c, -1.0f);
    halves(0, s.m, std::vector<double>(2 * size_t(s.c)), one.data(), dg1, db1);
    REQUIRE(one == dx);
    REQUIRE(dg1 == dg);
    REQUIRE(db1 == db);
    // Process 1 learns process 2's sums first (a dry run), as an all-reduce would give them.
    const int64_t split = 40;
    std::vector<float> two(d.x.size()), scratch(d.x.size()), dga(s.c), dba(s.c), dgb(s.c), dbb(s.c);
    const std::vector<double> zeros(2 * size_t(s.c));
    const std::vector<double> tail = halves(split, s.m, zeros, scratch.data(), dgb, dbb);
    const std::vector<double> head = halves(0, split, tail, two.data(), dga, dba);
    std::fill(dgb.begin(), dgb.end(), 0.0f), std::fill(dbb.begin(), dbb.end(), 0.0f);
    halves(split, s.m, head, two.data() + split * s.c, dgb, dbb);
    require_close(two, to_double(dx), 1e-6, "dx");
    for (int j = 0; j < s.c; ++j) dga[j] += dgb[j], dba[j] += dbb[j];
    // Each process rounds its own parameter gradients to float, and the halves' sums can be
    // larger than their total: a few float roundings of the parts, not one of the whole.
    require_close(dga, to_double(minus(dg, 0.5f)), 1e-5, "dgamma");
    require_close(dba, to_double(minus(db, -1.0f)), 1e-5, "dbeta");
  }
}

TEST_CASE("batchnorm_update_running follows PyTorch (unbiased variance)", "[batchnorm]") {
  // Channel 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: 0, 0, 0, 8
  // (mean 2, biased var 12, unbiased 16).
  const std::vector<float> x = {1, 0, 2, 0, 3, 0, 4, 8};
  std::vector<float> mean(2), var(2);
  k::batchnorm_stats(4, 2, x.data(), mean.data(), var.data());
  REQUIRE(mean == std::vector<float>{2.5f, 2.0f});
  REQUIRE(var == std::vector<float>{1.25f, 12.0f});
  // PyTorch's initial running statistics, then one more step from there.
  std::vector<float> rmean = {0.0f, 0.0f}, rvar = {1.0f, 1.0f};
  k::batchnorm_update_running(4, 2, mean.data(), var.data(), 0.1f, rmean.data(), rvar.data());
  require_close(rmean, {0.25, 0.2}, 1e-7, "running mean");
  require_close(rvar, {0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 16.0}, 1e-7, "running var");
  k::batchnorm_update_running(4, 2, mean.data(), var.data(), 0.1f, rmean.data(), rvar.data());
  require_close(rmean, {0.9 * 0.25 + 0.25, 0.9 * 0.2 + 0.2}, 1e-7, "running mean, step 2");
  require_close(rvar, {0.9 * (0.9 + 0.5 / 3.0) + 0.5 / 3.0, 0.9 * 2.5 + 1.6}, 1e-7,
                "running var, step 2");
}

TEST_CASE("batchnorm results do not depend on the thread count", "[batchnorm]") {
  const Case s{4096, 33};  // above the threading threshold
  const Data d = make_data(s, Activation::none, 400);
  const int saved = omp_get_max_threads();
  std::vector<float> mean[2], var[2], y[2], dx[2], dg[2], db[2];
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    mean[t].resize(s.c), var[t].resize(s.c), y[t].resize(d.x.size()), dx[t].resize(d.x.size());
    dg[t].assign(s.c, 0.0f), db[t].assign(s.c, 0.0f);
    k::batchnorm_stats(s.m, s.c, d.x.data(), mean[t].data(), var[t].data());
    k::batchnorm_act_forward(s.m, s.c, d.x.data(), mean[t].data(), var[t].data(), d.gamma.data(),
                             d.beta.data(), kEps, Activation::relu6, y[t].data());
    k::batchnorm_act_backward(s.m, s.c, d.x.data(), d.r.data(), mean[t].data(), var[t].data(),
                              d.gamma.data(), d.beta.data(), kEps, Activation::relu6, true,
                              dx[t].data(), dg[t].data(), db[t].data());
  }
  omp_set_num_threads(saved);
  for (auto* v : {mean, var, y, dx, dg, db})
    require_close(v[1], to_double(v[0]), 1e-6, "2 threads against 1");
}
