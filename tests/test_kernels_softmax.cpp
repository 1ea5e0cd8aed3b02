// Softmax and log-softmax over the last axis: forward against the definition in double, backward
// against finite differences of that definition.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/loss.h"
#include "op_reference.h"

using namespace osprey_test;

namespace {

// log(exp(z_c) / sum_j exp(z_j)) of each row, written from the definition in double (the max
// is subtracted inside exp and added back, which leaves the value unchanged).
std::vector<double> ref_log_softmax(int64_t rows, int64_t cols, const std::vector<double>& z) {
  std::vector<double> out(z.size());
  for (int64_t i = 0; i < rows; ++i) {
    const double* row = z.data() + i * cols;
    double m = row[0];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, row[c]);
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(row[c] - m);
    for (int64_t c = 0; c < cols; ++c) out[size_t(i * cols + c)] = row[c] - m - std::log(sum);
  }
  return out;
}

std::vector<double> ref_softmax(int64_t rows, int64_t cols, const std::vector<double>& z) {
  std::vector<double> out = ref_log_softmax(rows, cols, z);
  for (double& v : out) v = std::exp(v);
  return out;
}

struct Case {
  int64_t rows, cols;
  float spread;  // input range; large values test the max subtraction
};

// The last case is big enough to be threaded.
const Case kCases[] = {{1, 1, 1.0f},  {1, 2, 3.0f},    {3, 5, 3.0f},
                       {4, 7, 20.0f}, {2, 1000, 8.0f}, {300, 94, 5.0f}};

}  // namespace

TEST_CASE("softmax and log-softmax forward match a double reference", "[softmax]") {
  uint32_t seed = 1;
  for (const Case& c : kCases) {
    INFO("rows " << c.rows << " cols " << c.cols);
    const auto x = random_floats(size_t(c.rows * c.cols), seed++, -c.spread, c.spread);
    std::vector<float> y(x.size(), NAN), ly(x.size(), NAN);
    osprey::cpu::softmax_forward(c.rows, c.cols, x.data(), y.data());
    osprey::cpu::log_softmax_forward(c.rows, c.cols, x.data(), ly.data());
    require_close(y, ref_softmax(c.rows, c.cols, to_double(x)), 1e-5, "softmax");
    require_close(ly, ref_log_softmax(c.rows, c.cols, to_double(x)), 1e-5, "log_softmax");
    for (int64_t i = 0; i < c.rows; ++i) {
      double sum = 0.0;
      for (int64_t k = 0; k < c.cols; ++k) sum += y[size_t(i * c.cols + k)];
      REQUIRE(sum == Approx(1.0).epsilon(1e-5));
    }
  }
}

TEST_CASE("softmax and log-softmax are stable for huge inputs", "[softmax]") {
  // exp(1000) overflows float and double alike; shifting a row must not change its softmax.
  const std::vector<float> big = {1000.0f, 1001.0f, 998.0f, -1000.0f, -999.0f, -1003.0f};
  const std::vector<float> small = {0.0f, 1.0f, -2.0f, 0.0f, 1.0f, -3.0f};
  std::vector<float> y(6), ys(6), ly(6), lys(6);
  osprey::cpu::softmax_forward(2, 3, big.data(), y.data());
  osprey::cpu::softmax_forward(2, 3, small.data(), ys.data());
  osprey::cpu::log_softmax_forward(2, 3, big.data(), ly.data());
  osprey::cpu::log_softmax_forward(2, 3, small.data(), lys.data());
  for (int i = 0; i < 6; ++i) {
    INFO("element " << i);
    REQUIRE(y[size_t(i)] == Approx(ys[size_t(i)]).epsilon(1e-6));
    REQUIRE(ly[size_t(i)] == Approx(lys[size_t(i)]).epsilon(1e-6));
  }
}

TEST_CASE("softmax and log-softmax backward match finite differences", "[softmax]") {
  uint32_t seed = 40;
  for (const Case& c : kCases) {
    if (c.rows * c.cols > 2000) continue;  // finite differences cost one forward per element
    INFO("rows " << c.rows << " cols " << c.cols);
    const size_t n = size_t(c.rows * c.cols);
    const auto x = random_floats(n, seed++, -c.spread / 4, c.spread / 4);
    const auto dy = random_floats(n, seed++);
    auto xd = to_double(x);
    const auto dyd = to_double(dy);
    // The gradient of sum(dy * f(x)) is the backward of f applied to dy.
    auto softmax_loss = [&] { return dot(dyd, ref_softmax(c.rows, c.cols, xd)); };
    auto log_softmax_loss = [&] { return dot(dyd, ref_log_softmax(c.rows, c.cols, xd)); };
    std::vector<float> y(n), dx(n, NAN);
    osprey::cpu::softmax_forward(c.rows, c.cols, x.data(), y.data());
    osprey::cpu::softmax_backward(c.rows, c.cols, y.data(), dy.data(), dx.data());
    require_close(dx, numeric_grad(softmax_loss, xd, 1e-5), 1e-4, "softmax dx");
    std::fill(dx.begin(), dx.end(), NAN);
    osprey::cpu::log_softmax_forward(c.rows, c.cols, x.data(), y.data());
    osprey::cpu::log_softmax_backward(c.rows, c.cols, y.data(), dy.data(), dx.data());
    require_close(dx, numeric_grad(log_softmax_loss, xd, 1e-5), 1e-4, "log_softmax dx");
  }
}

TEST_CASE("softmax of empty arrays writes nothing", "[softmax]") {
  float x = 1.0f, y = 7.0f;
  osprey::cpu::softmax_forward(0, 5, &x, &y);
  osprey::cpu::log_softmax_forward(3, 0, &x, &y);
  REQUIRE(y == 7.0f);
}
