#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "op_reference.h"

using namespace osprey_test;
namespace k = osprey::cpu;

TEST_CASE("relu forward and backward", "[elementwise]") {
  // Sizes below and above the threading threshold.
  for (int64_t n : {int64_t{7}, int64_t{100003}}) {
    auto x = random_floats(n, 1);
    x[0] = 0.0f;
    x[1] = NAN;
    const auto r = random_floats(n, 2);
    std::vector<float> y(n), dx(n, NAN);
    k::relu_forward(n, x.data(), y.data());
    int64_t wrong = 0;
    for (int64_t i = 2; i < n; ++i) wrong += y[i] != (x[i] > 0.0f ? x[i] : 0.0f);
    REQUIRE(wrong == 0);
    REQUIRE(y[0] == 0.0f);
    REQUIRE(std::isnan(y[1]));  // NaN is not silently turned into 0

    k::relu_backward(n, y.data(), r.data(), dx.data());
    REQUIRE(dx[0] == 0.0f);
    for (int64_t i = 2; i < n; ++i) wrong += dx[i] != (x[i] > 0.0f ? r[i] : 0.0f);
    REQUIRE(wrong == 0);
  }
}

TEST_CASE("relu backward matches finite differences", "[elementwise]") {
  const int n = 41;
  auto x = random_floats(n, 3);
  for (float& v : x)
    if (std::abs(v) < 0.01f) v = 0.5f;  // keep the kink out of the difference step
  const auto r = random_floats(n, 4);
  std::vector<float> y(n), dx(n);
  k::relu_forward(n, x.data(), y.data());
  k::relu_backward(n, y.data(), r.data(), dx.data());
  auto xd = to_double(x);
  const auto rd = to_double(r);
  auto loss = [&] {
    double l = 0.0;
    for (int i = 0; i < n; ++i) l += std::max(xd[i], 0.0) * rd[i];
    return l;
  };
  require_close(dx, numeric_grad(loss, xd, 1e-4), 1e-6, "relu dx");
}

TEST_CASE("dropout: p = 0 is the identity and p = 1 drops everything", "[elementwise]") {
  const int64_t n = 50001;
  const auto x = random_floats(n, 5);
  std::vector<float> y(n, NAN), dx(n, NAN);
  std::vector<uint8_t> mask(n, 7);
  k::dropout_forward(n, 0.0f, 42, 0, x.data(), y.data(), mask.data());
  REQUIRE(y == x);
  REQUIRE(std::count(mask.begin(), mask.end(), 1) == n);
  k::dropout_backward(n, 0.0f, mask.data(), x.data(), dx.data());
  REQUIRE(dx == x);

  k::dropout_forward(n, 1.0f, 42, 0, x.data(), y.data(), mask.data());
  // Exactly zero everywhere: no 0 * inf.
  REQUIRE(std::count(mask.begin(), mask.end(), 0) == n);
  REQUIRE(std::count(y.begin(), y.end(), 0.0f) == n);
  k::dropout_backward(n, 1.0f, mask.data(), x.data(), dx.data());
  REQUIRE(std::count(dx.begin(), dx.end(), 0.0f) == n);
}

TEST_CASE("dropout mask is deterministic, offset-addressable and keeps about 1 - p",
          "[elementwise]") {
  const int64_t n = 1 << 20;
  const float p = 0.3f;
  const auto x = random_floats(n, 6);
  std::vector<float> y(n), y2(n);
  std::vector<uint8_t> mask(n), mask2(n);
  k::dropout_forward(n, p, 1234, 99, x.data(), y.data(), mask.data());
  k::dropout_forward(n, p, 1234, 99, x.data(), y2.data(), mask2.data());
  REQUIRE(mask == mask2);
  REQUIRE(y == y2);

  // The mask of element i depends only on (seed, offset + i): computing the second half on
  // its own with the matching offset reproduces it (independent of how work is split).
  const int64_t half = n / 2 + 3;
  k::dropout_forward(n - half, p, 1234, 99 + half, x.data() + half, y2.data(), mask2.data());
  REQUIRE(std::equal(mask2.begin(), mask2.begin() + (n - half), mask.begin() + half));

  int64_t kept = 0, wrong = 0;
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) {
    kept += mask[i];
    wrong += y[i] != (mask[i] ? x[i] * scale : 0.0f);
  }
  REQUIRE(wrong == 0);
  // Binomial standard deviation is ~0.00045 here; 0.003 is over 6 sigma.
  REQUIRE(std::abs(double(kept) / n - (1.0 - p)) < 0.003);

  // Another seed gives another mask, and neighbouring elements are not correlated.
  k::dropout_forward(n, p, 1235, 99, x.data(), y2.data(), mask2.data());
  int64_t same = 0, pairs = 0;
  for (int64_t i = 0; i < n; ++i) same += mask[i] == mask2[i];
  for (int64_t i = 1; i < n; ++i) pairs += mask[i] && mask[i - 1];
  const double agree = p * p + (1 - p) * (1 - p);
  REQUIRE(std::abs(double(same) / n - agree) < 0.005);
  REQUIRE(std::abs(double(pairs) / (n - 1) - (1 - p) * (1 - p)) < 0.005);
}

TEST_CASE("dropout backward applies the mask and the scale", "[elementwise]") {
  const int64_t n = 40000;
  const float p = 0.25f;
  const auto x = random_floats(n, 7), dy = random_floats(n, 8);
  std::vector<float> y(n), dx(n, NAN);
  std::vector<uint8_t> mask(n);
  k::dropout_forward(n, p, 9, 0, x.data(), y.data(), mask.data());
  k::dropout_backward(n, p, mask.data(), dy.data(), dx.data());
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += dx[i] != (mask[i] ? dy[i] * scale : 0.0f);
  REQUIRE(wrong == 0);
}

TEST_CASE("fill, add, axpy, scale and sum_squares", "[elementwise]") {
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{70001}}) {
    const auto a = random_floats(n, 10), b = random_floats(n, 11);
    std::vector<float> y(n, NAN);
    k::fill(n, 2.5f, y.data());
    REQUIRE(std::count(y.begin(), y.end(), 2.5f) == n);
    k::add(n, a.data(), b.data(), y.data());
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += y[i] != a[i] + b[i];
    REQUIRE(wrong == 0);
    std::vector<float> z(b);
    k::axpy(n, -0.75f, a.data(), z.data());
    std::vector<double> want_z(n);
    for (int64_t i = 0; i < n; ++i) want_z[i] = b[i] - 0.75 * a[i];
    require_close(z, want_z, 1e-6, "axpy");
    k::scale(n, 3.0f, z.data());
    for (double& v : want_z) v *= 3.0;
    require_close(z, want_z, 1e-6, "scale");
    double want = 0.0;
    for (float v : a) want += double(v) * v;
    REQUIRE(k::sum_squares(n, a.data()) == Approx(want).epsilon(1e-12));
  }
}
