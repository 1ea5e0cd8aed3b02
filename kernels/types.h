// The vocabulary the kernels of every device share, and that the engine, models and programs
// use to call them: the activations fused into other ops and the shapes of convolutions and
// pooling. Activations are NHWC throughout.
#pragma once
#include <cstdint>

namespace osprey {

enum class Activation { none, relu, relu6 };

// Dense 2-D convolution. Weights are [K][KH][KW][C] ("OHWI") so that im2col rows of an NHWC
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

// Depthwise 2-D convolution (one filter per channel, groups == channels). Weights are
// [KH][KW][C] so the innermost loop runs over contiguous channels, like the activations.
struct DepthwiseShape {
  int n = 0, h = 0, w = 0, c = 0;
  int kh = 3, kw = 3;
  int stride = 1, pad = 1;
  int oh() const { return h + 2 * pad < kh ? 0 : (h + 2 * pad - kh) / stride + 1; }
  int ow() const { return w + 2 * pad < kw ? 0 : (w + 2 * pad - kw) / stride + 1; }
  int64_t input_numel() const { return int64_t(n) * h * w * c; }
  int64_t output_numel() const { return int64_t(n) * oh() * ow() * c; }
};

// Max pooling; padding counts as -inf.
struct Pool2dShape {
  int n = 0, h = 0, w = 0, c = 0;
  int kh = 2, kw = 2, stride = 2, pad = 0;
  int oh() const { return h + 2 * pad < kh ? 0 : (h + 2 * pad - kh) / stride + 1; }
  int ow() const { return w + 2 * pad < kw ? 0 : (w + 2 * pad - kw) / stride + 1; }
};

}  // namespace osprey
