// Elementwise CUDA kernels over device pointers; same semantics as kernels/cpu/elementwise.h
// and kernels/cpu/activation.h (dropout draws the same keep mask as the CPU for a seed).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cuda {

void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
void activation_forward(int64_t n, Activation act, const float* x, float* y, cudaStream_t stream);
void activation_backward(int64_t n, Activation act, const float* y, const float* dy, float* dx,
                         cudaStream_t stream);

void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                     uint8_t* mask, cudaStream_t stream);
void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx,
                      cudaStream_t stream);

void fill(int64_t n, float value, float* y, cudaStream_t stream);
void add(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);  // y = a + b
void axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);    // y += a x
void scale(int64_t n, float alpha, float* y, cudaStream_t stream);                   // y *= a
// bf16 storage (kernels/bf16.h), as the CPU overloads: float arithmetic, one rounding.
void add(int64_t n, const bf16* a, const bf16* b, bf16* y, cudaStream_t stream);
void axpy(int64_t n, float alpha, const bf16* x, bf16* y, cudaStream_t stream);
void cast(int64_t n, const float* x, bf16* y, cudaStream_t stream);
void cast(int64_t n, const bf16* x, float* y, cudaStream_t stream);
// sum of x^2, accumulated in double, written to *out (one device double).
void sum_squares(int64_t n, const float* x, double* out, cudaStream_t stream);

}  // namespace osprey::cuda
