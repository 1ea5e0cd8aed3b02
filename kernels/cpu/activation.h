// Pointwise activations, fused into BatchNorm by conv + BN + activation layers (batchnorm.h),
// also available on their own.
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace osprey::cpu {

// y = act(x); y may alias x.
void activation_forward(int64_t n, Activation act, const float* x, float* y);
// dx = dy * act'(.), the mask read from the saved output y (relu: y > 0; relu6: 0 < y < 6).
// dx overwritten; it may alias dy.
void activation_backward(int64_t n, Activation act, const float* y, const float* dy, float* dx);

}  // namespace osprey::cpu
