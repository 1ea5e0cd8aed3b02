#include "kernels/cpu/optim.h"

#include <cmath>

namespace osprey::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;
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
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
               float beta2, float eps, float weight_decay, bool decoupled, int64_t step) {
  // Bias corrections are Python floats (double) in PyTorch; they become float scalars only when
  // they enter the tensor ops.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(static_cast<double>(lr) / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float w1 = static_cast<float>(1.0 - static_cast<double>(beta1));  // lerp weight
  const float w2 = static_cast<float>(1.0 - static_cast<double>(beta2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const bool coupled_wd = !decoupled && weight_decay != 0.0f;
  const bool decoupled_wd = decoupled && weight_decay != 0.0f;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i];
    float gi = g[i];
    if (decoupled_wd) pi = pi * decay;
    if (coupled_wd) gi = gi + weight_decay * pi;
    // exp_avg.lerp_(grad, 1 - beta1): ATen's lerp picks its formula by the weight's size.
    const float mi = w1 < 0.5f ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
    const float vi = v[i] * beta2 + w2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    p[i] = pi + (-step_size) * (mi / denom);
  }
}

}  // namespace osprey::cpu
