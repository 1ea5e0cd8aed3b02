#include <cmath>
#include <vector>

#include "kernels/cpu/loss.h"
#include "op_reference.h"

using namespace osprey_test;

namespace {

// Mean over rows of -sum_c target_c * log_softmax(z)_c, target = (1 - eps) onehot + eps / C,
// written from the definition (log of the normalized exponentials), all in double.
double ref_loss(int n, int classes, const std::vector<double>& z,
                const std::vector<int64_t>& labels, double eps,
                std::vector<double>* probs = nullptr) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    const double* row = z.data() + size_t(i) * classes;
    double m = row[0];
    for (int c = 1; c < classes; ++c) m = std::max(m, row[c]);
    double sum = 0.0;
    for (int c = 0; c < classes; ++c) sum += std::exp(row[c] - m);
    for (int c = 0; c < classes; ++c) {
      const double p = std::exp(row[c] - m) / sum;
      if (probs) (*probs)[size_t(i) * classes + c] = p;
      const double target = (c == labels[i] ? 1.0 - eps : 0.0) + eps / classes;
      total -= target * std::log(p);
    }
  }
  return total / n;
}

struct Case {
  int n, classes;
  float smoothing;
  float spread;  // logit range; large values test the max subtraction
};

}  // namespace

TEST_CASE("softmax cross-entropy forward matches a double reference", "[loss]") {
  uint32_t seed = 1;
  for (Case c : {Case{1, 2, 0.0f, 3.0f}, Case{3, 5, 0.0f, 3.0f}, Case{3, 5, 0.1f, 3.0f},
                 Case{64, 10, 0.2f, 10.0f}, Case{4, 7, 0.0f, 1.0f}, Case{5, 94, 0.05f, 5.0f},
                 Case{300, 94, 0.1f, 5.0f}}) {  // the last one is big enough to be threaded
    auto z = random_floats(size_t(c.n) * c.classes, seed++, -c.spread, c.spread);
    std::vector<int64_t> labels(c.n);
    for (int i = 0; i < c.n; ++i) labels[i] = (i * 7 + 3) % c.classes;
    std::vector<float> probs(z.size(), NAN);
    const double loss = osprey::cpu::softmax_cross_entropy_forward(
        c.n, c.classes, z.data(), labels.data(), c.smoothing, probs.data());
    std::vector<double> rp(z.size());
    const double want = ref_loss(c.n, c.classes, to_double(z), labels, c.smoothing, &rp);
    INFO("n " << c.n << " classes " << c.classes << " eps " << c.smoothing);
    REQUIRE(loss == Approx(want).epsilon(1e-6));
    require_close(probs, rp, 1e-5, "probs");
  }
}

TEST_CASE("softmax cross-entropy is stable for huge logits", "[loss]") {
  // exp(1000) overflows float and double alike; shifting every logit must not change anything.
  std::vector<float> z = {1000.0f, 1001.0f, 998.0f, -1000.0f, -999.0f, -1003.0f};
  std::vector<float> small = {0.0f, 1.0f, -2.0f, 0.0f, 1.0f, -3.0f};
  std::vector<int64_t> labels = {1, 2};
  std::vector<float> p(6), ps(6);
  const double a =
      osprey::cpu::softmax_cross_entropy_forward(2, 3, z.data(), labels.data(), 0.1f, p.data());
  const double b = osprey::cpu::softmax_cross_entropy_forward(2, 3, small.data(), labels.data(),
                                                              0.1f, ps.data());
  REQUIRE(std::isfinite(a));
  REQUIRE(a == Approx(b).epsilon(1e-6));
  for (int i = 0; i < 6; ++i) REQUIRE(p[i] == Approx(ps[i]).epsilon(1e-6));
}

TEST_CASE("softmax cross-entropy backward matches finite differences", "[loss]") {
  uint32_t seed = 20;
  for (Case c : {Case{1, 2, 0.0f, 3.0f}, Case{3, 5, 0.0f, 3.0f}, Case{3, 5, 0.1f, 3.0f},
                 Case{7, 11, 0.3f, 4.0f}}) {
    const auto z = random_floats(size_t(c.n) * c.classes, seed++, -c.spread, c.spread);
    std::vector<int64_t> labels(c.n);
    for (int i = 0; i < c.n; ++i) labels[i] = (i * 5 + 1) % c.classes;
    std::vector<float> probs(z.size()), dz(z.size(), NAN);
    osprey::cpu::softmax_cross_entropy_forward(c.n, c.classes, z.data(), labels.data(), c.smoothing,
                                               probs.data());
    const float dloss = 0.7f;  // the upstream gradient scales the result
    osprey::cpu::softmax_cross_entropy_backward(c.n, c.classes, probs.data(), labels.data(),
                                                c.smoothing, dloss, dz.data());
    auto zd = to_double(z);
    auto loss = [&] { return dloss * ref_loss(c.n, c.classes, zd, labels, c.smoothing); };
    require_close(dz, numeric_grad(loss, zd, 1e-5), 1e-5,
                  "dlogits n=" + std::to_string(c.n) + " eps=" + std::to_string(c.smoothing));
  }
}
