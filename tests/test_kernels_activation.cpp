#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "op_reference.h"

using osprey::Activation;
using namespace osprey_test;

namespace {

double ref_act(Activation a, double v) {
  if (a == Activation::relu) return std::max(v, 0.0);
  if (a == Activation::relu6) return std::min(std::max(v, 0.0), 6.0);
  return v;
}

const char* act_name(Activation a) {
  return a == Activation::relu ? "relu" : a == Activation::relu6 ? "relu6" : "none";
}

// Inputs spread over [-3, 9] so relu6 clamps on both sides, with the kinks themselves and a
// NaN planted at the front.
std::vector<float> inputs(int64_t n, uint32_t seed) {
  auto x = random_floats(n, seed, -3.0f, 9.0f);
  x[0] = 0.0f, x[1] = 6.0f, x[2] = NAN, x[3] = -0.0f;
  return x;
}

}  // namespace

TEST_CASE("activation forward matches the reference, in and out of place", "[activation]") {
  // Sizes below and above the threading threshold.
  for (int64_t n : {int64_t{7}, int64_t{100003}}) {
    for (Activation a : {Activation::none, Activation::relu, Activation::relu6}) {
      INFO(act_name(a) << " n " << n);
      const auto x = inputs(n, 1);
      std::vector<float> y(n, -1.0f);
      osprey::cpu::activation_forward(n, a, x.data(), y.data());
      REQUIRE(std::isnan(y[2]));  // NaN is not silently clamped into range
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i)
        if (i != 2) wrong += y[i] != static_cast<float>(ref_act(a, x[i]));
      REQUIRE(wrong == 0);

      std::vector<float> inplace = x;
      osprey::cpu::activation_forward(n, a, inplace.data(), inplace.data());
      for (int64_t i = 0; i < n; ++i)
        if (i != 2) wrong += inplace[i] != y[i];
      REQUIRE(wrong == 0);
      REQUIRE(std::isnan(inplace[2]));
    }
  }
}

TEST_CASE("activation backward masks from the output, boundaries excluded", "[activation]") {
  for (int64_t n : {int64_t{9}, int64_t{100003}}) {
    for (Activation a : {Activation::none, Activation::relu, Activation::relu6}) {
      INFO(act_name(a) << " n " << n);
      auto x = inputs(n, 2);
      x[2] = 3.0f;
      std::vector<float> y(n), dx(n, NAN);
      const auto dy = random_floats(n, 3);
      osprey::cpu::activation_forward(n, a, x.data(), y.data());
      osprey::cpu::activation_backward(n, a, y.data(), dy.data(), dx.data());
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) {
        // PyTorch's relu and hardtanh(0, 6) pass the gradient only strictly inside.
        const bool pass = a == Activation::none || (a == Activation::relu && x[i] > 0.0f) ||
                          (a == Activation::relu6 && x[i] > 0.0f && x[i] < 6.0f);
        wrong += dx[i] != (pass ? dy[i] : 0.0f);
      }
      REQUIRE(wrong == 0);
      if (a != Activation::none) REQUIRE(dx[0] == 0.0f);
      if (a == Activation::relu6) REQUIRE(dx[1] == 0.0f);

      std::vector<float> g = dy;  // dx aliasing dy
      osprey::cpu::activation_backward(n, a, y.data(), g.data(), g.data());
      REQUIRE(g == dx);
    }
  }
}

TEST_CASE("activation backward matches finite differences", "[activation]") {
  const int n = 45;
  for (Activation a : {Activation::none, Activation::relu, Activation::relu6}) {
    INFO(act_name(a));
    auto x = random_floats(n, 4, -3.0f, 9.0f);
    for (float& v : x)  // keep the kinks out of the difference step
      if (std::abs(v) < 0.01f || std::abs(v - 6.0f) < 0.01f) v += 0.5f;
    const auto r = random_floats(n, 5);
    std::vector<float> y(n), dx(n);
    osprey::cpu::activation_forward(n, a, x.data(), y.data());
    osprey::cpu::activation_backward(n, a, y.data(), r.data(), dx.data());
    auto xd = to_double(x);
    const auto rd = to_double(r);
    auto loss = [&] {
      double l = 0.0;
      for (int i = 0; i < n; ++i) l += ref_act(a, xd[i]) * rd[i];
      return l;
    };
    require_close(dx, numeric_grad(loss, xd, 1e-4), 1e-6, "activation dx");
  }
}

TEST_CASE("activation results do not depend on the thread count", "[activation]") {
  const int64_t n = 200001;
  const int saved = omp_get_max_threads();
  const auto x = inputs(n, 6), dy = random_floats(n, 7);
  std::vector<float> y[2], dx[2];
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    y[t].assign(n, 0.0f), dx[t].assign(n, 0.0f);
    osprey::cpu::activation_forward(n, Activation::relu6, x.data(), y[t].data());
    osprey::cpu::activation_backward(n, Activation::relu6, y[t].data(), dy.data(), dx[t].data());
  }
  omp_set_num_threads(saved);
  y[0][2] = y[1][2] = 0.0f;  // the NaN
  REQUIRE(y[0] == y[1]);
  REQUIRE(dx[0] == dx[1]);
}
