// Inference: the depthwise and projection stages of an inverted-residual block in one pass, with
// BatchNorm already folded into both convolutions. The depthwise outputs (the block's widest
// tensor after the expansion) never reach memory: each thread keeps a few rows of them in a
// cache-sized tile and multiplies that tile by the projection weights straight away.
#pragma once
#include "kernels/cpu/activation.h"
#include "kernels/cpu/depthwise.h"

namespace osprey::cpu {

// x [N][H][W][C]; dw_w [KH][KW][C], dw_b [C]; act after the depthwise stage; proj_w [C][K]
// (input-major: the tile multiplies it without a transpose), proj_b [K]; residual
// [N][OH][OW][K] added after the projection, or null. y [N][OH][OW][K], overwritten.
void depthwise_project_forward(const DepthwiseShape& s, int k, const float* x, const float* dw_w,
                               const float* dw_b, Activation act, const float* proj_w,
                               const float* proj_b, const float* residual, float* y);

}  // namespace osprey::cpu
