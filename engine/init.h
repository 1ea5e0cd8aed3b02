// Parameter initialisers, matching PyTorch's defaults in distribution (not in random stream).
#pragma once
#include <cmath>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace osprey::init {

inline void uniform(const Tensor& t, double lo, double hi, Rng& rng) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(rng.uniform(lo, hi));
}

inline void normal(const Tensor& t, double mean, double stddev, Rng& rng) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(mean + stddev * rng.normal());
}

inline void constant(const Tensor& t, float value) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
}

// nn.Conv2d / nn.Linear default: kaiming_uniform(a=sqrt(5)) for weights, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias draws from the same bound.
inline void torch_default(const Tensor& weight, const Tensor& bias, int64_t fan_in, Rng& rng) {
  double bound = 1.0 / std::sqrt(double(fan_in));
  uniform(weight, -bound, bound, rng);
  if (bias.defined()) uniform(bias, -bound, bound, rng);
}

}  // namespace osprey::init
