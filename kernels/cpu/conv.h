// Dense 2-D convolution on NHWC activations, forward and backward (im2col + OpenBLAS SGEMM).
#pragma once
#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace osprey::cpu {

// Activations are NHWC; weights are [K][KH][KW][C] ("OHWI") so that im2col rows of an NHWC
// image multiply the weight matrix without a transpose of the output.
struct Conv2dShape {
  int n = 0, h = 0, w = 0, c = 0;  // input
  int k = 0;                       // output channels
  int kh = 0, kw = 0;
  int stride = 1, pad = 0;
  // 0 when the window does not fit (C++ division would round a negative span up to 1).
  int oh() const { return h + 2 * pad < kh ? 0 : (h + 2 * pad - kh) / stride + 1; }
  int ow() const { return w + 2 * pad < kw ? 0 : (w + 2 * pad - kw) / stride + 1; }
  int64_t input_numel() const { return int64_t(n) * h * w * c; }
  int64_t output_numel() const { return int64_t(n) * oh() * ow() * k; }
};

// y[n][oh][ow][k] = bias[k] + sum x * w. bias may be null.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y);

// dx is overwritten (skipped when null); dw and db are accumulated into (+=), each skipped
// when null. The caller zeroes parameter gradients once per step.
void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db);

// bf16 activations (kernels/cpu/bf16.h) with fp32 weights, bias and weight gradients: the
// weights are rounded to bf16 for the products (as a bf16 GEMM takes them), sums are in float,
// and each stored activation is rounded once. The reference for the CUDA bf16 kernels.
void conv2d_forward(const Conv2dShape& s, const bf16* x, const float* w, const float* bias,
                    bf16* y);
void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db);

}  // namespace osprey::cpu
