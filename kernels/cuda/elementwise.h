// Elementwise CUDA kernels over device pointers; same semantics as kernels/cpu/elementwise.h.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace osprey::cuda {

void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);

}  // namespace osprey::cuda
