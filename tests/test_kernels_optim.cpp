#include <cmath>
#include <vector>

#include "kernels/cpu/optim.h"
#include "op_reference.h"

using namespace osprey_test;

namespace {

// Gradients for one step: mostly O(1), with every 7th element tiny so that eps matters.
std::vector<float> grads(int64_t n, uint32_t seed) {
  auto g = random_floats(n, seed);
  for (int64_t i = 0; i < n; i += 7) g[i] *= 1e-7f;
  return g;
}

// Two checks per step. The trajectory (want: the double reference run from the start) must
// match to float precision. The update is small next to the parameters, so it is checked on
// its own: delta is the double update computed from the kernel's own state before the step,
// and p must equal p0 + delta to within the roundings of the float arithmetic: a little of
// delta (and of the largest delta, for updates that cancel), plus two roundings of p.
void require_step_close(const std::vector<float>& p, const std::vector<float>& p0,
                        const std::vector<double>& delta, const std::vector<double>& want,
                        const std::string& what) {
  require_close(p, want, 1e-6, what + " trajectory");
  size_t worst = 0;
  double excess = 0.0, max_delta = 0.0;
  for (double d : delta) max_delta = std::max(max_delta, std::abs(d));
  for (size_t i = 0; i < p.size(); ++i) {
    const double expect = p0[i] + delta[i];
    const double ulp = std::nextafter(std::abs(float(expect)), INFINITY) - std::abs(float(expect));
    const double err =
        std::abs(p[i] - expect) - (1e-5 * std::abs(delta[i]) + 1e-6 * max_delta + 2.0 * ulp);
    if (!(err <= excess)) excess = std::isnan(err) ? INFINITY : err, worst = i;
  }
  INFO(what << " update: element " << worst << " p0 " << p0[worst] << " got " << p[worst]
            << " want " << p0[worst] + delta[worst]);
  REQUIRE(excess <= 0.0);
}

struct Sgd {
  float lr, momentum, dampening, wd;
  bool nesterov;
};

struct Adam {
  float lr, beta1, beta2, eps, wd;
  bool decoupled;
};

}  // namespace

TEST_CASE("sgd_step follows torch.optim.SGD over several steps", "[optim]") {
  const int steps = 6;
  uint32_t seed = 1;
  for (int64_t n : {int64_t{1001}, int64_t{70001}}) {
    for (Sgd o : {Sgd{0.1f, 0.0f, 0.0f, 0.0f, false}, Sgd{0.1f, 0.0f, 0.0f, 0.01f, false},
                  Sgd{0.1f, 0.9f, 0.0f, 0.0f, false}, Sgd{0.05f, 0.9f, 0.1f, 0.0f, false},
                  Sgd{0.05f, 0.9f, 0.0f, 0.01f, true}, Sgd{0.1f, 0.8f, 0.3f, 0.005f, false}}) {
      const std::string tag = "sgd lr=" + std::to_string(o.lr) +
                              " m=" + std::to_string(o.momentum) +
                              " d=" + std::to_string(o.dampening) + " wd=" + std::to_string(o.wd) +
                              " nesterov=" + std::to_string(o.nesterov);
      std::vector<float> p = random_floats(n, seed++), buf(n, NAN);
      std::vector<double> rp = to_double(p), rbuf(n, 0.0);
      for (int t = 1; t <= steps; ++t) {
        const auto g = grads(n, seed++);
        const std::vector<float> p0 = p, buf0 = buf;
        std::vector<double> delta(n);
        for (int64_t i = 0; i < n; ++i) {
          double d = g[i] + double(o.wd) * p0[i];
          if (o.momentum != 0.0f) {
            const double b = t == 1 ? d : double(o.momentum) * buf0[i] + (1.0 - o.dampening) * d;
            d = o.nesterov ? d + double(o.momentum) * b : b;
          }
          delta[i] = -double(o.lr) * d;
        }
        // The buffer is only handed over when momentum is on, as the header allows.
        osprey::cpu::sgd_step(n, p.data(), g.data(), o.momentum != 0.0f ? buf.data() : nullptr,
                              o.lr, o.momentum, o.dampening, o.wd, o.nesterov, t == 1);
        for (int64_t i = 0; i < n; ++i) {
          double d = g[i] + double(o.wd) * rp[i];
          if (o.momentum != 0.0f) {
            // PyTorch starts the buffer at the first gradient, undampened.
            rbuf[i] = t == 1 ? d : double(o.momentum) * rbuf[i] + (1.0 - o.dampening) * d;
            d = o.nesterov ? d + double(o.momentum) * rbuf[i] : rbuf[i];
          }
          rp[i] -= double(o.lr) * d;
        }
        require_step_close(p, p0, delta, rp, tag + " step " + std::to_string(t));
        if (o.momentum != 0.0f) require_close(buf, rbuf, 1e-5, tag + " momentum buffer");
      }
    }
  }
}

TEST_CASE("adam_step follows torch.optim.Adam and AdamW over several steps", "[optim]") {
  const int steps = 7;
  uint32_t seed = 100;
  for (int64_t n : {int64_t{1001}, int64_t{70001}}) {
    for (Adam o : {Adam{1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false},
                   Adam{1e-2f, 0.9f, 0.99f, 1e-6f, 0.01f, false},
                   Adam{1e-2f, 0.8f, 0.999f, 1e-8f, 0.1f, true},
                   Adam{1e-2f, 0.3f, 0.9f, 1e-8f, 0.0f, false}}) {  // beta1 < 0.5: other lerp
      const std::string tag = "adam lr=" + std::to_string(o.lr) + " b1=" + std::to_string(o.beta1) +
                              " b2=" + std::to_string(o.beta2) + " wd=" + std::to_string(o.wd) +
                              " decoupled=" + std::to_string(o.decoupled);
      std::vector<float> p = random_floats(n, seed++), m(n, 0.0f), v(n, 0.0f);
      std::vector<double> rp = to_double(p), rm(n, 0.0), rv(n, 0.0);
      const double lr = o.lr, b1 = o.beta1, b2 = o.beta2, eps = o.eps, wd = o.wd;
      for (int t = 1; t <= steps; ++t) {
        const auto g = grads(n, seed++);
        // The algorithm as documented for torch.optim.Adam / AdamW.
        auto step = [&](double& pi, double& mi, double& vi, double gi) {
          if (o.decoupled)
            pi *= 1.0 - lr * wd;
          else
            gi += wd * pi;
          mi = b1 * mi + (1.0 - b1) * gi;
          vi = b2 * vi + (1.0 - b2) * gi * gi;
          const double mhat = mi / (1.0 - std::pow(b1, t));
          const double vhat = vi / (1.0 - std::pow(b2, t));
          pi -= lr * mhat / (std::sqrt(vhat) + eps);
        };
        const std::vector<float> p0 = p;
        std::vector<double> delta(n);
        for (int64_t i = 0; i < n; ++i) {
          double pi = p[i], mi = m[i], vi = v[i];
          step(pi, mi, vi, g[i]);
          delta[i] = pi - p[i];
        }
        osprey::cpu::adam_step(n, p.data(), g.data(), m.data(), v.data(), o.lr, o.beta1, o.beta2,
                               o.eps, o.wd, o.decoupled, t);
        for (int64_t i = 0; i < n; ++i) step(rp[i], rm[i], rv[i], g[i]);
        const std::string at = tag + " step " + std::to_string(t);
        require_step_close(p, p0, delta, rp, at);
        require_close(m, rm, 1e-5, at + " exp_avg");
        require_close(v, rv, 1e-5, at + " exp_avg_sq");
      }
    }
  }
}
