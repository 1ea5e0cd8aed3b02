// Max pooling on NHWC activations.
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace osprey::cpu {

// argmax[i] holds the flat input index (h*W + w) of each output's maximum, for backward.
// Padding counts as -inf (PyTorch's semantics); ties keep the first maximum in scan order.
void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
// dx is overwritten.
void maxpool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx);

// Global average pooling: x [n][hw][c] -> y [n][c]; backward spreads dy / hw (dx overwritten).
void global_avg_pool_forward(int n, int hw, int c, const float* x, float* y);
void global_avg_pool_backward(int n, int hw, int c, const float* dy, float* dx);

}  // namespace osprey::cpu
