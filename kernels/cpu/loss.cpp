#include "kernels/cpu/loss.h"

#include <cmath>

namespace osprey::cpu {

double softmax_cross_entropy_forward(int n, int classes, const float* logits, const int64_t* labels,
                                     float label_smoothing, float* probs) {
  if (n <= 0 || classes <= 0) return 0.0;
  const double eps = label_smoothing;
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (static_cast<int64_t>(n) * classes > (1 << 14))
  for (int i = 0; i < n; ++i) {
    const float* z = logits + static_cast<int64_t>(i) * classes;
    float* p = probs + static_cast<int64_t>(i) * classes;
    // Subtracting the row max keeps exp() from overflowing; the sum and the log are in double.
    float zmax = z[0];
    for (int c = 1; c < classes; ++c) zmax = z[c] > zmax ? z[c] : zmax;
    double sum = 0.0, zsum = 0.0;
    for (int c = 0; c < classes; ++c) {
      const float e = std::exp(z[c] - zmax);
      p[c] = e;
      sum += e;
      zsum += z[c];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int c = 0; c < classes; ++c) p[c] *= inv;
    // -sum_c target_c * log_softmax_c with target = (1 - eps) onehot + eps / classes, and
    // log_softmax_c = z_c - lse: the smoothing term needs only the row sum of the logits.
    const double lse = zmax + std::log(sum);
    const double nll = lse - z[labels[i]];
    const double smooth = lse - zsum / classes;
    total += (1.0 - eps) * nll + eps * smooth;
  }
  return total / n;
}

void softmax_cross_entropy_backward(int n, int classes, const float* probs, const int64_t* labels,
                                    float label_smoothing, float dloss, float* dlogits) {
  if (n <= 0 || classes <= 0) return;
  const float g = dloss / static_cast<float>(n);
  const float off = label_smoothing / static_cast<float>(classes);
  const float on = 1.0f - label_smoothing + off;
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(n) * classes > (1 << 14))
  for (int i = 0; i < n; ++i) {
    const float* p = probs + static_cast<int64_t>(i) * classes;
    float* d = dlogits + static_cast<int64_t>(i) * classes;
    for (int c = 0; c < classes; ++c) d[c] = g * (p[c] - off);
    const int64_t y = labels[i];
    d[y] = g * (p[y] - on);
  }
}

}  // namespace osprey::cpu
