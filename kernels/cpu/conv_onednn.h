// Dense 2-D convolutions through oneDNN's convolution primitives (fp32, NHWC activations, our
// OHWI weights reordered into the format oneDNN picks each call, since training changes them),
// created once per shape. conv.cpp sends the passes where these beat our kernels here
// (onednn_conv_faster, conv_detail.h).
#pragma once
#include <string>

#include "kernels/cpu/conv.h"

namespace osprey::cpu {

// As conv2d_forward (conv.h).
void onednn_conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y);

// As conv2d_backward without the bias gradient: dx overwritten, dw accumulated into (+=), each
// skipped when null.
void onednn_conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                            float* dx, float* dw);

// The implementations oneDNN picked for the shape ("forward / backward data / backward
// weights"), for benchmarks.
std::string onednn_conv2d_impl(const Conv2dShape& s);

}  // namespace osprey::cpu
