// Fused optimizer updates over flat device buffers; PyTorch's rules, as kernels/cpu/optim.h.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace osprey::cuda {

void sgd_step(int64_t n, float* p, const float* g, float* momentum_buf, float lr, float momentum,
              float dampening, float weight_decay, bool nesterov, bool first_step,
              cudaStream_t stream);
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
               float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
               cudaStream_t stream);

}  // namespace osprey::cuda
