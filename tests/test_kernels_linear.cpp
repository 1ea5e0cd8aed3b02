#include <vector>

#include "kernels/cpu/gemm.h"
#include "op_reference.h"

using namespace osprey_test;

namespace {

// y[i][o] = b[o] + sum_j x[i][j] w[o][j]
std::vector<double> ref_linear(int n, int in, int out, const std::vector<double>& x,
                               const std::vector<double>& w, const std::vector<double>* b) {
  std::vector<double> y(size_t(n) * out);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      double acc = b ? (*b)[o] : 0.0;
      for (int j = 0; j < in; ++j) acc += x[size_t(i) * in + j] * w[size_t(o) * in + j];
      y[size_t(i) * out + o] = acc;
    }
  return y;
}

struct Dims {
  int n, in, out;
};

}  // namespace

TEST_CASE("sgemm matches a reference for every transpose and leading dimension", "[gemm]") {
  const int m = 5, n = 7, k = 3, pad = 2;  // leading dimensions wider than the matrices
  uint32_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 0.5f}) {
        const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        const auto a = random_floats(size_t(ta ? k : m) * lda, seed++);
        const auto b = random_floats(size_t(tb ? n : k) * ldb, seed++);
        auto c = random_floats(size_t(m) * ldc, seed++);
        if (beta == 0.0f)  // beta = 0 must ignore (not multiply) whatever C holds
          for (int i = 0; i < m; ++i) c[size_t(i) * ldc] = NAN;
        std::vector<double> want(c.begin(), c.end());
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            double acc = 0.0;
            for (int p = 0; p < k; ++p)
              acc += double(ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p]) *
                     (tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j]);
            double& w = want[size_t(i) * ldc + j];
            w = 1.5 * acc + (beta == 0.0f ? 0.0 : beta * w);
          }
        osprey::cpu::sgemm(ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(),
                           ldc);
        require_close(c, want, 1e-5,
                      "sgemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                          " beta=" + std::to_string(beta));
      }
}

TEST_CASE("sgemm with k == 0 scales C by beta", "[gemm]") {
  std::vector<float> c = {1.0f, 2.0f, NAN, 4.0f};
  osprey::cpu::sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  REQUIRE(c == std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
  c = {1.0f, 2.0f, 3.0f, 4.0f};
  osprey::cpu::sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 2.0f, c.data(), 2);
  REQUIRE(c == std::vector<float>{2.0f, 4.0f, 6.0f, 8.0f});
}

TEST_CASE("linear forward matches the reference", "[linear]") {
  uint32_t seed = 10;
  for (Dims d : {Dims{1, 5, 3}, Dims{3, 7, 5}, Dims{64, 300, 129}}) {
    for (bool with_bias : {false, true}) {
      const auto x = random_floats(size_t(d.n) * d.in, seed++);
      const auto w = random_floats(size_t(d.out) * d.in, seed++);
      const auto b = random_floats(d.out, seed++);
      std::vector<float> y(size_t(d.n) * d.out, NAN);
      osprey::cpu::linear_forward(d.n, d.in, d.out, x.data(), w.data(),
                                  with_bias ? b.data() : nullptr, y.data());
      const auto bd = to_double(b);
      require_close(
          y, ref_linear(d.n, d.in, d.out, to_double(x), to_double(w), with_bias ? &bd : nullptr),
          1e-5, "linear " + std::to_string(d.n) + "x" + std::to_string(d.in));
    }
  }
}

TEST_CASE("linear backward matches finite differences", "[linear]") {
  uint32_t seed = 20;
  for (Dims d : {Dims{1, 5, 3}, Dims{3, 7, 5}, Dims{5, 1, 1}}) {
    const auto x = random_floats(size_t(d.n) * d.in, seed++);
    const auto w = random_floats(size_t(d.out) * d.in, seed++);
    const auto b = random_floats(d.out, seed++);
    const auto r = random_floats(size_t(d.n) * d.out, seed++);
    std::vector<float> dx(x.size(), NAN), dw(w.size(), 0.0f), db(d.out, 0.0f);
    osprey::cpu::linear_backward(d.n, d.in, d.out, x.data(), w.data(), r.data(), dx.data(),
                                 dw.data(), db.data());
    auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
    const auto rd = to_double(r);
    auto loss = [&] { return dot(ref_linear(d.n, d.in, d.out, xd, wd, &bd), rd); };
    const std::string tag = std::to_string(d.n) + "x" + std::to_string(d.in);
    require_close(dx, numeric_grad(loss, xd, 1e-3), 1e-5, "linear dx " + tag);
    require_close(dw, numeric_grad(loss, wd, 1e-3), 1e-5, "linear dw " + tag);
    require_close(db, numeric_grad(loss, bd, 1e-3), 1e-5, "linear db " + tag);
  }
}

TEST_CASE("linear backward accumulates dw and db and skips null outputs", "[linear]") {
  // Large enough for the threaded bias reduction.
  const int n = 300, in = 9, out = 150;
  const auto x = random_floats(size_t(n) * in, 31), w = random_floats(size_t(out) * in, 32);
  const auto dy = random_floats(size_t(n) * out, 33);
  std::vector<float> dx(x.size()), dw(w.size(), 0.0f), db(out, 0.0f);
  osprey::cpu::linear_backward(n, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                               db.data());
  std::vector<double> rdw(w.size(), 0.0), rdb(out, 0.0);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      const double g = dy[size_t(i) * out + o];
      rdb[o] += g;
      for (int j = 0; j < in; ++j) rdw[size_t(o) * in + j] += g * x[size_t(i) * in + j];
    }
  require_close(dw, rdw, 1e-5, "dw");
  require_close(db, rdb, 1e-5, "db");

  std::vector<float> dw2(w.size(), 0.5f), db2(out, -0.25f);
  osprey::cpu::linear_backward(n, in, out, x.data(), w.data(), dy.data(), nullptr, dw2.data(),
                               db2.data());
  for (double& v : rdw) v += 0.5;
  for (double& v : rdb) v -= 0.25;
  require_close(dw2, rdw, 1e-5, "dw accumulates");
  require_close(db2, rdb, 1e-5, "db accumulates");

  std::vector<float> dx2(x.size(), NAN);
  osprey::cpu::linear_backward(n, in, out, x.data(), w.data(), dy.data(), dx2.data(), nullptr,
                               nullptr);
  require_close(dx2, to_double(dx), 0.0, "dx only");
  osprey::cpu::linear_backward(n, in, out, x.data(), w.data(), dy.data(), nullptr, nullptr,
                               nullptr);
}

TEST_CASE("recording gemms counts each shape's calls while on, and nothing after", "[gemm]") {
  std::vector<float> a(6 * 4, 1.0f), b(4 * 5, 2.0f), c(6 * 5);
  osprey::cpu::record_gemms(true);
  for (int i = 0; i < 3; ++i)
    osprey::cpu::sgemm(false, false, 6, 5, 4, 1.0f, a.data(), 4, b.data(), 5, 0.0f, c.data(), 5);
  osprey::cpu::sgemm(true, false, 4, 5, 6, 1.0f, a.data(), 4, c.data(), 5, 0.0f, b.data(), 5);
  osprey::cpu::record_gemms(false);
  osprey::cpu::sgemm(false, false, 6, 5, 4, 1.0f, a.data(), 4, b.data(), 5, 0.0f, c.data(), 5);
  const auto records = osprey::cpu::recorded_gemms();
  REQUIRE(records.size() == 2);
  REQUIRE(records[0].shape.m == 4);  // in shape order
  REQUIRE(records[0].shape.trans_a);
  REQUIRE(records[0].calls == 1);
  REQUIRE(records[1].shape.m == 6);
  REQUIRE(records[1].shape.n == 5);
  REQUIRE(records[1].shape.k == 4);
  REQUIRE(records[1].calls == 3);
  REQUIRE(records[1].seconds > 0.0);
  osprey::cpu::record_gemms(true);  // a new recording starts empty
  REQUIRE(osprey::cpu::recorded_gemms().empty());
  osprey::cpu::record_gemms(false);
}
