// Fused optimizer updates over flat parameter/gradient buffers, with PyTorch's exact rules.
#pragma once
#include <cstdint>

namespace osprey::cpu {

// torch.optim.SGD: g += wd * p; buf = first ? g : momentum * buf + (1 - dampening) * g;
// g = nesterov ? g + momentum * buf : buf; p -= lr * g. momentum_buf unused when momentum == 0.
void sgd_step(int64_t n, float* p, const float* g, float* momentum_buf, float lr, float momentum,
              float dampening, float weight_decay, bool nesterov, bool first_step);

// torch.optim.Adam (decoupled = false: g += wd * p) and AdamW (decoupled = true:
// p *= 1 - lr * wd). step is the 1-based step count after this update.
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
               float beta2, float eps, float weight_decay, bool decoupled, int64_t step);

// The per-step scalars of that update, computed once on the host (the CUDA op uses them too, so
// both devices round them the same way).
struct AdamConstants {
  float beta2, eps, weight_decay, step_size, bc2_sqrt, w1, w2, decay;
  bool coupled_wd, decoupled_wd, lerp_low;
};
AdamConstants adam_constants(float lr, float beta1, float beta2, float eps, float weight_decay,
                             bool decoupled, int64_t step);

}  // namespace osprey::cpu
