// BatchNorm over NHWC activations [m][c] with the following activation fused, forward and
// backward; same semantics as kernels/cpu/batchnorm.h. Reductions accumulate in double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cuda {

// Per-channel mean and biased variance of x [m][c].
void batchnorm_stats(int64_t m, int c, const float* x, float* mean, float* var,
                     cudaStream_t stream);
// y = act((x - mean) / sqrt(var + eps) * gamma + beta); y may alias x.
void batchnorm_act_forward(int64_t m, int c, const float* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           float* y, cudaStream_t stream);
// Training-mode (batch_stats) or eval-mode backward. As the CPU op, it reads no saved output:
// the activation's mask is recomputed from x with the forward kernel's own arithmetic (same
// gamma and beta as the forward; null: 1 and 0), which saves two of the seven passes over
// memory. dx overwritten (skipped when null); dgamma, dbeta accumulated (+=).
void batchnorm_act_backward(int64_t m, int c, const float* x, const float* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, float* dx, float* dgamma,
                            float* dbeta, cudaStream_t stream);
// Synchronized BatchNorm (training mode, f32): the backward in two halves with the
// cross-process sum between them, as the CPU op's. The first writes this process's per-channel sums
// [sum dz][sum dz * (x - mean)] to sums (2c device doubles) and accumulates dgamma and dbeta from
// them; the caller replaces sums by their totals over all processes (total_m rows); the second then
// writes dx.
void batchnorm_act_backward_sums(int64_t m, int c, const float* x, const float* dy,
                                 const float* mean, const float* var, const float* gamma,
                                 const float* beta, float eps, Activation act, double* sums,
                                 float* dgamma, float* dbeta, cudaStream_t stream);
void batchnorm_act_backward_dx(int64_t m, int c, const float* x, const float* dy, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps,
                               Activation act, const double* sums, int64_t total_m, float* dx,
                               cudaStream_t stream);
// bf16 activations (kernels/bf16.h): statistics, parameters and gradients of gamma and
// beta stay f32; arithmetic in float/double (as the CPU overloads in kernels/cpu/batchnorm.h).
void batchnorm_stats(int64_t m, int c, const bf16* x, float* mean, float* var, cudaStream_t stream);
void batchnorm_act_forward(int64_t m, int c, const bf16* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           bf16* y, cudaStream_t stream);
void batchnorm_act_backward(int64_t m, int c, const bf16* x, const bf16* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, bf16* dx, float* dgamma, float* dbeta,
                            cudaStream_t stream);
// running = (1 - momentum) * running + momentum * batch (unbiased variance for running_var).
void batchnorm_update_running(int64_t m, int c, const float* mean, const float* var, float momentum,
                              float* running_mean, float* running_var, cudaStream_t stream);

}  // namespace osprey::cuda
