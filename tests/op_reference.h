// Helpers shared by the kernel tests: random data, closeness checks with a useful failure
// message, and central finite differences in double precision.
#pragma once
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace osprey_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Largest error of got against want, each element scaled by max(|want_i|, floor * max|want|):
// a relative check that does not blow up on entries that cancel to nearly zero.
inline double max_rel_error(const std::vector<float>& got, const std::vector<double>& want,
                            size_t* worst = nullptr, double floor = 0.1) {
  double maxabs = 0.0;
  for (double w : want) maxabs = std::max(maxabs, std::abs(w));
  const double base = std::max(floor * maxabs, 1e-30);
  double err = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e =
        std::abs(static_cast<double>(got[i]) - want[i]) / std::max(std::abs(want[i]), base);
    if (!(e <= err)) {  // also catches NaN
      err = std::isnan(e) ? INFINITY : e;
      if (worst) *worst = i;
    }
  }
  return err;
}

// ||a - b|| / max(||b||, tiny) over the whole array; NaN anywhere gives infinity.
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

inline void require_close(const std::vector<float>& got, const std::vector<double>& want,
                          double tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t worst = 0;
  const double err = max_rel_error(got, want, &worst);
  std::ostringstream msg;
  msg << what << ": worst element " << worst << " got " << (got.empty() ? 0.0 : got[worst])
      << " want " << (want.empty() ? 0.0 : want[worst]) << " rel err " << err;
  INFO(msg.str());
  REQUIRE(err <= tol);
}

// d f / d x_i by central differences; x is restored afterwards.
inline std::vector<double> numeric_grad(const std::function<double()>& f, std::vector<double>& x,
                                        double h) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f();
    x[i] = saved - h;
    const double down = f();
    x[i] = saved;
    g[i] = (up - down) / (2.0 * h);
  }
  return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline std::vector<float> minus(const std::vector<float>& a, float v) {
  std::vector<float> r(a);
  for (float& x : r) x -= v;
  return r;
}

}  // namespace osprey_test
