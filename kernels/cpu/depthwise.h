// Depthwise 2-D convolution (one filter per channel, groups == channels) on NHWC activations.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/types.h"

namespace osprey::cpu {

// Weights are [KH][KW][C] so the innermost loop runs over contiguous channels, like the NHWC
// activations. bias [C] or null. y [N][OH][OW][C].
void depthwise_conv2d_forward(const DepthwiseShape& s, const float* x, const float* w,
                              const float* bias, float* y);
// Output rows [r0, r1) of the flattened [N * OH] row index only, written to y (row r0's output
// first), on the calling thread: for fused kernels that consume a few rows at a time (fp32 only).
void depthwise_conv2d_forward_rows(const DepthwiseShape& s, int64_t r0, int64_t r1, const float* x,
                                   const float* w, const float* bias, float* y);
// dx overwritten (skipped when null); dw and db accumulated (+=), each skipped when null.
void depthwise_conv2d_backward(const DepthwiseShape& s, const float* x, const float* w,
                               const float* dy, float* dx, float* dw, float* db);

// bf16 activations (kernels/bf16.h), fp32 weights (not rounded: the depthwise kernels read
// them as they are). The same kernels as fp32, reading bf16 as float: every result equals the
// fp32 kernel's on the widened inputs, with each stored activation rounded once.
void depthwise_conv2d_forward(const DepthwiseShape& s, const bf16* x, const float* w,
                              const float* bias, bf16* y);
void depthwise_conv2d_backward(const DepthwiseShape& s, const bf16* x, const float* w,
                               const bf16* dy, bf16* dx, float* dw, float* db);

}  // namespace osprey::cpu
