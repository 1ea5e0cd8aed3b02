// Dense 2-D convolutions through oneDNN's convolution primitives (fp32, NHWC activations, our
// OHWI weights reordered into the format oneDNN picks), with the contract of conv2d_forward and
// conv2d_backward in conv.h: dx overwritten, dw and db accumulated, each skipped when null.
// conv.cpp sends the shapes where these beat our kernels here (onednn_conv_faster).
#pragma once
#include <string>

#include "kernels/cpu/conv.h"

namespace osprey::cpu {

void onednn_conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y);
void onednn_conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                            float* dx, float* dw, float* db);

// The implementations oneDNN picked for the shape ("forward / backward data / backward
// weights"), for benchmarks.
std::string onednn_conv2d_impl(const Conv2dShape& s);

}  // namespace osprey::cpu
