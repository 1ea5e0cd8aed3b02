// Depthwise 3x3 (any KHxKW) convolution on NHWC activations, forward and both backward kernels:
// our own kernels, 128-bit loads along channels. Same semantics as kernels/cpu/depthwise.h.
#pragma once
#include <cuda_runtime.h>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cuda {

// x [N][H][W][C], w [KH][KW][C], bias [C] or null -> y [N][OH][OW][C] (overwritten).
void depthwise_conv2d_forward(const DepthwiseShape& s, const float* x, const float* w,
                              const float* bias, float* y, cudaStream_t stream);
// dx overwritten (skipped when null); dw and db accumulated (+=), each skipped when null.
void depthwise_conv2d_backward(const DepthwiseShape& s, const float* x, const float* w,
                               const float* dy, float* dx, float* dw, float* db,
                               cudaStream_t stream);

// bf16 activations, fp32 weights, bias and weight gradients; float arithmetic (as the CPU
// overloads in kernels/cpu/depthwise.h). 64-bit loads of 4 channels.
void depthwise_conv2d_forward(const DepthwiseShape& s, const bf16* x, const float* w,
                              const float* bias, bf16* y, cudaStream_t stream);
void depthwise_conv2d_backward(const DepthwiseShape& s, const bf16* x, const float* w,
                               const bf16* dy, bf16* dx, float* dw, float* db, cudaStream_t stream);

}  // namespace osprey::cuda
