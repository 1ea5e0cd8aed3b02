// BatchNorm over NHWC activations (statistics per channel over the m = N*H*W rows), with the
// activation that follows it fused into the same pass, forward and backward.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/cpu/activation.h"

namespace osprey::cpu {

// Per-channel mean and biased variance of x [m][c]: float sums over blocks of rows, double
// totals.
void batchnorm_stats(int64_t m, int c, const float* x, float* mean, float* var);

// y = act((x - mean) / sqrt(var + eps) * gamma + beta), x and y [m][c]; y may alias x.
void batchnorm_act_forward(int64_t m, int c, const float* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           float* y);

// Backward of batchnorm_act_forward in training mode (mean/var are the batch statistics, so
// they depend on x). The activation's mask is recomputed from x, gamma and beta exactly as the
// forward computed its pre-activation (relu: z > 0; relu6: 0 < z < 6), as the CUDA kernel does:
// the saved output is not read (and a mask read from a bf16-rounded output would flip wherever
// rounding reaches 6). dx overwritten (skipped when null; may alias dy); dgamma and dbeta
// accumulated (+=). With batch_stats == false (eval-mode statistics, constants), dx is the plain
// affine backward.
void batchnorm_act_backward(int64_t m, int c, const float* x, const float* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, float* dx, float* dgamma,
                            float* dbeta);
// Synchronized BatchNorm (batch statistics over the rows of several processes; f32): the
// training-mode backward in two halves with the cross-process sum between them. The first
// writes this process's per-channel sums [sum dz][sum dz * (x - mean)] to sums (2c doubles) and
// accumulates dgamma and dbeta from them (data parallelism averages those later); the caller
// replaces sums by their totals over all processes, whose rows number total_m; the second then
// writes dx. With one process and total_m == m the two equal batchnorm_act_backward.
void batchnorm_act_backward_sums(int64_t m, int c, const float* x, const float* dy,
                                 const float* mean, const float* var, const float* gamma,
                                 const float* beta, float eps, Activation act, double* sums,
                                 float* dgamma, float* dbeta);
void batchnorm_act_backward_dx(int64_t m, int c, const float* x, const float* dy, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps,
                               Activation act, const double* sums, int64_t total_m, float* dx);

// bf16 activations (kernels/bf16.h), read and written as bf16 by the same loops: values in
// float, sums in float blocks and double totals, one rounding per stored value. The results
// equal the fp32 kernels' on the widened inputs, rounded once.
void batchnorm_stats(int64_t m, int c, const bf16* x, float* mean, float* var);
void batchnorm_act_forward(int64_t m, int c, const bf16* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           bf16* y);
void batchnorm_act_backward(int64_t m, int c, const bf16* x, const bf16* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, bf16* dx, float* dgamma,
                            float* dbeta);

// running = (1 - momentum) * running + momentum * batch, with the unbiased variance
// (var * m / (m - 1)) for the running variance, as PyTorch does.
void batchnorm_update_running(int64_t m, int c, const float* mean, const float* var, float momentum,
                              float* running_mean, float* running_var);

}  // namespace osprey::cpu
