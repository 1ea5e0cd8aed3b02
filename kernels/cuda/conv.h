// Dense 2-D convolution on NHWC activations with OHWI weights (1x1: one GEMM; others: im2col on
// the device + GEMM); same semantics as kernels/cpu/conv.h.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cpu/conv.h"

namespace osprey::cuda {

using cpu::Conv2dShape;

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, cudaStream_t stream);
// dx overwritten (skipped when null); dw, db accumulated (+=, each skipped when null).
void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, cudaStream_t stream);

}  // namespace osprey::cuda
