#include "kernels/cpu/loss.h"

#include <cmath>

namespace osprey::cpu {
namespace {

// Below this many elements the threads cost more than they save.
constexpr int64_t kParallelMin = 1 << 14;

struct RowExpSum {
  float max;
  double sum;  // of exp(z - max); the row's log-sum-exp is max + log(sum)
};

// Subtracting the row max keeps exp() from overflowing; the sum is in double. The exponentials
// go to e when it is given.
RowExpSum row_exp_sum(int64_t cols, const float* z, float* e) {
  float zmax = z[0];
  for (int64_t c = 1; c < cols; ++c) zmax = z[c] > zmax ? z[c] : zmax;
  double sum = 0.0;
  for (int64_t c = 0; c < cols; ++c) {
    const float v = std::exp(z[c] - zmax);
    if (e) e[c] = v;
    sum += v;
  }
  return {zmax, sum};
}

// p = softmax(z) of one row: the one softmax of the standalone op and of the loss.
RowExpSum softmax_row(int64_t cols, const float* z, float* p) {
  const RowExpSum r = row_exp_sum(cols, z, p);
  const float inv = static_cast<float>(1.0 / r.sum);
  for (int64_t c = 0; c < cols; ++c) p[c] *= inv;
  return r;
}

}  // namespace

void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) softmax_row(cols, x + i * cols, y + i * cols);
}

void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float *p = y + i * cols, *g = dy + i * cols;
    double dot = 0.0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(g[c]) * p[c];
    const float s = static_cast<float>(dot);
    float* d = dx + i * cols;
    for (int64_t c = 0; c < cols; ++c) d[c] = p[c] * (g[c] - s);
  }
}

void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* z = x + i * cols;
    const RowExpSum r = row_exp_sum(cols, z, nullptr);
    // z - lse in double: for large logits z and lse agree in many leading digits.
    const double lse = r.max + std::log(r.sum);
    float* out = y + i * cols;
    for (int64_t c = 0; c < cols; ++c) out[c] = static_cast<float>(z[c] - lse);
  }
}

void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float *ly = y + i * cols, *g = dy + i * cols;
    double total = 0.0;
    for (int64_t c = 0; c < cols; ++c) total += g[c];
    const float s = static_cast<float>(total);
    float* d = dx + i * cols;
    for (int64_t c = 0; c < cols; ++c) d[c] = g[c] - std::exp(ly[c]) * s;
  }
}

double softmax_cross_entropy_forward(int n, int classes, const float* logits, const int64_t* labels,
                                     float label_smoothing, float* probs) {
  if (n <= 0 || classes <= 0) return 0.0;
  const double eps = label_smoothing;
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (static_cast<int64_t>(n) * classes > kParallelMin)
  for (int i = 0; i < n; ++i) {
    const float* z = logits + static_cast<int64_t>(i) * classes;
    float* p = probs + static_cast<int64_t>(i) * classes;
    const RowExpSum r = softmax_row(classes, z, p);
    // -sum_c target_c * log_softmax_c with target = (1 - eps) onehot + eps / classes, and
    // log_softmax_c = z_c - lse: the smoothing term needs only the row sum of the logits.
    double zsum = 0.0;
    for (int c = 0; c < classes; ++c) zsum += z[c];
    const double lse = r.max + std::log(r.sum);
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
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(n) * classes > kParallelMin)
  for (int i = 0; i < n; ++i) {
    const float* p = probs + static_cast<int64_t>(i) * classes;
    float* d = dlogits + static_cast<int64_t>(i) * classes;
    for (int c = 0; c < classes; ++c) d[c] = g * (p[c] - off);
    const int64_t y = labels[i];
    d[y] = g * (p[y] - on);
  }
}

}  // namespace osprey::cpu
