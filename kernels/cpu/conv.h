// Dense 2-D convolution on NHWC activations, forward and backward (im2col + OpenBLAS SGEMM).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cpu {

// y[n][oh][ow][k] = bias[k] + sum x * w. bias may be null.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y);

// dx is overwritten (skipped when null); dw and db are accumulated into (+=), each skipped
// when null. The caller zeroes parameter gradients once per step.
void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db);

// bf16 activations (kernels/bf16.h) with fp32 weights, bias and weight gradients: the
// weights are rounded to bf16 for the products (as a bf16 GEMM takes them), sums are in float,
// and each stored activation is rounded once. The reference for the CUDA bf16 kernels.
void conv2d_forward(const Conv2dShape& s, const bf16* x, const float* w, const float* bias,
                    bf16* y);
void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db);

}  // namespace osprey::cpu
