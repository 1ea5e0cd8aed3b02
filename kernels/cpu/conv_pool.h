// Stride-1 convolution fused with non-overlapping max pooling, for a first layer (few input
// channels, no input gradient): the full-resolution conv output is never written to memory,
// only the pooled output and the position of each maximum in its window.
#pragma once
#include <cstdint>

namespace osprey::cpu {

// Activations NHWC, weights [K][KH][KW][C] as in conv.h; the pool window is pool x pool with
// stride pool, over the conv output of a stride-1 convolution padded by pad.
struct ConvPoolShape {
  int n = 0, h = 0, w = 0, c = 0;  // input
  int k = 0;                       // output channels
  int kh = 0, kw = 0;
  int pad = 0, pool = 2;
  int conv_h() const { return h + 2 * pad < kh ? 0 : h + 2 * pad - kh + 1; }
  int conv_w() const { return w + 2 * pad < kw ? 0 : w + 2 * pad - kw + 1; }
  // Floor mode, as PyTorch: a last partial window is dropped.
  int oh() const { return conv_h() / pool; }
  int ow() const { return conv_w() / pool; }
};

// The kernels' limits: the input channels a window's taps are gathered over, and the window
// positions an argmax byte can name.
constexpr int kConvPoolMaxChannels = 4;
constexpr int kConvPoolMaxWindow = 15;

// y[n][oh][ow][k] = max over the window (a, b) of conv(x)[n][oh*pool + a][ow*pool + b][k], and
// argmax = a * pool + b: the first maximum in (a, b) scan order, a NaN always winning, as
// max_pool2d. Each conv value is summed as the direct conv kernel (conv_direct.cpp) sums it
// (bias, then the taps in [KH][KW][C] order): bit for bit the unfused ops under GCC, within one
// float rounding where a compiler contracts the two kernels' multiply-adds differently (clang).
void conv2d_max_pool2d_forward(const ConvPoolShape& s, const float* x, const float* w,
                               const float* bias, float* y, uint8_t* argmax);

// dw[k][i][j][c] += sum over pooled outputs p of dy[p][k] * x[argmax position + (i, j)][c], and
// db[k] += sum of dy[p][k]; each skipped when null. No dx: the fused op is for inputs without a
// gradient.
void conv2d_max_pool2d_backward(const ConvPoolShape& s, const float* x, const float* dy,
                                const uint8_t* argmax, float* dw, float* db);

}  // namespace osprey::cpu
