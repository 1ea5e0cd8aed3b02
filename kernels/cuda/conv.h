// Dense 2-D convolution on NHWC activations with OHWI weights (1x1: one GEMM; others: im2col on
// the device + GEMM); same semantics as kernels/cpu/conv.h.
#pragma once
#include <cuda_runtime.h>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cuda {

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, cudaStream_t stream);
// dx overwritten (skipped when null); dw, db accumulated (+=, each skipped when null).
void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, cudaStream_t stream);

// bf16 activations, fp32 weights, bias and weight gradients, as the CPU overloads in
// kernels/cpu/conv.h: bf16 tensor-core GEMMs (weights rounded to bf16), fp32 accumulation.
void conv2d_forward(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bf16* y,
                    cudaStream_t stream);
void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db, cudaStream_t stream);

}  // namespace osprey::cuda
