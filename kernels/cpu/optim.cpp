#include "kernels/cpu/optim.h"

#include <algorithm>
#include <cmath>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace osprey::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kBlock = 4096;  // elements per parallel work item

using AdamConsts = AdamConstants;

// One element, in the operation order of PyTorch's single-tensor Adam.
inline void adam_one(const AdamConsts& k, float& p, float g, float& m, float& v) {
  if (k.decoupled_wd) p = p * k.decay;
  if (k.coupled_wd) g = g + k.weight_decay * p;
  // exp_avg.lerp_(grad, 1 - beta1): ATen's lerp picks its formula by the weight's size.
  m = k.lerp_low ? m + k.w1 * (g - m) : g - (g - m) * (1.0f - k.w1);
  v = v * k.beta2 + k.w2 * g * g;
  const float denom = std::sqrt(v) / k.bc2_sqrt + k.eps;
  p = p + (-k.step_size) * (m / denom);
}

// std::sqrt may set errno, which stops GCC from vectorizing the loop; SSE's sqrt and divide
// are correctly rounded, so four lanes at a time give bit-identical results.
void adam_block(const AdamConsts& k, int64_t n, float* p, const float* g, float* m, float* v) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 beta2 = _mm_set1_ps(k.beta2), eps = _mm_set1_ps(k.eps);
  const __m128 wd = _mm_set1_ps(k.weight_decay), neg_step = _mm_set1_ps(-k.step_size);
  const __m128 bc2 = _mm_set1_ps(k.bc2_sqrt), w1 = _mm_set1_ps(k.w1), w2 = _mm_set1_ps(k.w2);
  const __m128 one_minus_w1 = _mm_set1_ps(1.0f - k.w1), decay = _mm_set1_ps(k.decay);
  for (; i + 4 <= n; i += 4) {
    __m128 pi = _mm_loadu_ps(p + i), gi = _mm_loadu_ps(g + i);
    __m128 mi = _mm_loadu_ps(m + i), vi = _mm_loadu_ps(v + i);
    if (k.decoupled_wd) pi = _mm_mul_ps(pi, decay);
    if (k.coupled_wd) gi = _mm_add_ps(gi, _mm_mul_ps(wd, pi));
    const __m128 diff = _mm_sub_ps(gi, mi);
    mi = k.lerp_low ? _mm_add_ps(mi, _mm_mul_ps(w1, diff))
                    : _mm_sub_ps(gi, _mm_mul_ps(diff, one_minus_w1));
    vi = _mm_add_ps(_mm_mul_ps(vi, beta2), _mm_mul_ps(_mm_mul_ps(w2, gi), gi));
    const __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc2), eps);
    pi = _mm_add_ps(pi, _mm_mul_ps(neg_step, _mm_div_ps(mi, denom)));
    _mm_storeu_ps(p + i, pi);
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
  }
#endif
  for (; i < n; ++i) adam_one(k, p[i], g[i], m[i], v[i]);
}

}  // namespace

// Each element follows the same float operation order as PyTorch's single-tensor SGD
// (d_p.add(p, alpha=wd), buf.mul_(m).add_(d_p, alpha=1-dampening), d_p.add(buf, alpha=m),
// p.add_(d_p, alpha=-lr)), so results track PyTorch to rounding.
void sgd_step(int64_t n, float* p, const float* g, float* momentum_buf, float lr, float momentum,
              float dampening, float weight_decay, bool nesterov, bool first_step) {
  const float keep = 1.0f - dampening;
  const bool use_momentum = momentum != 0.0f;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i];
    if (weight_decay != 0.0f) d = d + weight_decay * p[i];
    if (use_momentum) {
      float buf = first_step ? d : momentum_buf[i] * momentum + keep * d;
      momentum_buf[i] = buf;
      d = nesterov ? d + momentum * buf : buf;
    }
    p[i] = p[i] + (-lr) * d;
  }
}

// torch.optim.Adam, single-tensor (non-foreach, non-capturable) path.
AdamConstants adam_constants(float lr, float beta1, float beta2, float eps, float weight_decay,
                             bool decoupled, int64_t step) {
  // Bias corrections are Python floats (double) in PyTorch; they become float scalars only when
  // they enter the tensor ops.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  AdamConstants k;
  k.beta2 = beta2;
  k.eps = eps;
  k.weight_decay = weight_decay;
  k.step_size = static_cast<float>(static_cast<double>(lr) / bc1);
  k.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  k.w1 = static_cast<float>(1.0 - static_cast<double>(beta1));
  k.w2 = static_cast<float>(1.0 - static_cast<double>(beta2));
  k.decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  k.coupled_wd = !decoupled && weight_decay != 0.0f;
  k.decoupled_wd = decoupled && weight_decay != 0.0f;
  k.lerp_low = k.w1 < 0.5f;
  return k;
}

void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
               float beta2, float eps, float weight_decay, bool decoupled, int64_t step) {
  const AdamConsts k = adam_constants(lr, beta1, beta2, eps, weight_decay, decoupled, step);
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i = b * kBlock;
    adam_block(k, std::min(kBlock, n - i), p + i, g + i, m + i, v + i);
  }
}

}  // namespace osprey::cpu
