// Shared by the two dense-convolution paths (conv.cpp: im2col + GEMM; conv_direct.cpp:
// register-tiled direct loops): the geometry that picks a path, per-thread scratch, and the
// direct path's entry points. Internal to kernels/cpu.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/conv.h"

namespace osprey::cpu::conv_detail {

// Below this many floats of work a parallel region's fork/join costs more than it saves (and
// much more when the cores are shared with other processes).
constexpr int64_t kParallelMin = 1 << 15;

// Grow-only per-thread scratch: steady-state training steps allocate nothing. Slots: 0 im2col
// matrices, 1 rearranged weights, 2 a padded band of rows, 3 weight-gradient partial sums.
inline float* scratch(int64_t floats, int slot) {
  thread_local std::vector<float> buf[4];
  if (static_cast<int64_t>(buf[slot].size()) < floats) buf[slot].resize(floats);
  return buf[slot].data();
}

struct Geometry {
  int oh, ow;
  int64_t patch;     // KH * KW * C: one im2col row
  int64_t img_rows;  // OH * OW
  int64_t img_in;    // H * W * C
  bool pointwise;    // 1x1, stride 1, no padding: x already is the im2col matrix
  bool direct;       // direct loops for y and dW (see below)
  bool direct_dx;    // direct loops for dx
};

// Direct loops beat im2col + GEMM when the GEMM would be skinny (few input channels: a stem's
// KH*KW*C is tiny) and whenever one output pixel's patch is moderate: they skip writing and
// re-reading the im2col matrix, and a tap-major weight block (patch x 64 channels) stays in L2.
// The dx kernel is the forward kernel run over dY with flipped weights, which is only a plain
// convolution at stride 1, and it vectorizes over C, so it wants C in whole vectors.
inline Geometry geometry(const Conv2dShape& s) {
  Geometry g;
  g.oh = s.oh();
  g.ow = s.ow();
  g.patch = static_cast<int64_t>(s.kh) * s.kw * s.c;
  g.img_rows = static_cast<int64_t>(g.oh) * g.ow;
  g.img_in = static_cast<int64_t>(s.h) * s.w * s.c;
  g.pointwise = s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0;
  g.direct = g.patch > 0 && (s.c <= 4 || (!g.pointwise && g.patch <= 1152));
  g.direct_dx = g.direct && s.stride == 1 && s.c >= 16 && s.c % 8 == 0 &&
                static_cast<int64_t>(s.kh) * s.kw * s.k <= 1152;
  return g;
}

// The direct path (conv_direct.cpp): y, dX at stride 1, and dW / db.
void direct_forward(const Conv2dShape& s, const Geometry& g, const float* x, const float* w,
                    const float* bias, float* y);
void direct_backward_data(const Conv2dShape& s, const Geometry& g, const float* w, const float* dy,
                          float* dx);
void direct_backward_params(const Conv2dShape& s, const Geometry& g, const float* x,
                            const float* dy, float* dw, float* db);

// Our kernels alone (conv.cpp), whatever onednn_conv_faster says: conv2d_forward and
// conv2d_backward without the oneDNN path, for its tests and `osprey bench conv`.
void own_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void own_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx,
                  float* dw, float* db);
// db += the column sums of dY (double partials), alone: what the oneDNN path uses for db.
void bias_gradient(const Conv2dShape& s, const float* dy, float* db);

}  // namespace osprey::cpu::conv_detail

namespace osprey::cpu {

enum class ConvPass { forward, data, weights };

// Whether conv2d_forward (ConvPass::forward) and conv2d_backward (dx: data; dw and db:
// weights) send a pass of this shape to oneDNN's convolution primitives (conv_onednn.h): where
// they measured faster than ours (the figures are at the definition, conv.cpp).
bool onednn_conv_faster(const Conv2dShape& s, ConvPass pass);

}  // namespace osprey::cpu
