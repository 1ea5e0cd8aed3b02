#include "kernels/cpu/elementwise.h"

namespace osprey::cpu {

namespace {

// Below this many elements the fork/join of a parallel region costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

// splitmix64's finalizer: a bijective avalanche mix, so neighbouring counters give unrelated
// bits.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 24 bits, exactly representable as a float.
inline float uniform(uint64_t key, uint64_t counter) {
  const uint64_t h = mix64(key + counter * 0x9e3779b97f4a7c15ULL);
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// 1 / (1 - p) rounded once from double, as PyTorch does; p = 1 keeps nothing, so the scale is
// never used and must not be inf.
inline float keep_scale(float p) {
  return p < 1.0f ? static_cast<float>(1.0 / (1.0 - static_cast<double>(p))) : 0.0f;
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y) {
  // Written so that NaN passes through (as in PyTorch) and a diverging run stays visible.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];  // loaded unconditionally, so the select vectorizes
    dx[i] = y[i] > 0.0f ? g : 0.0f;
  }
}

void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                     uint8_t* mask) {
  // Mixing the seed first keeps streams of nearby seeds from being shifted copies of each other.
  const uint64_t key = mix64(seed ^ 0x5851f42d4c957f2dULL);
  const float scale = keep_scale(p);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = uniform(key, offset + static_cast<uint64_t>(i)) >= p;
    mask[i] = keep ? 1 : 0;
    y[i] = keep ? x[i] * scale : 0.0f;
  }
}

void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx) {
  const float scale = keep_scale(p);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i] * scale;
    dx[i] = mask[i] ? g : 0.0f;
  }
}

void fill(int64_t n, float value, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void add(int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void axpy(int64_t n, float alpha, const float* x, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void scale(int64_t n, float alpha, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}

double sum_squares(int64_t n, const float* x) {
  double total = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : total) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(x[i]) * x[i];
  return total;
}

}  // namespace osprey::cpu
