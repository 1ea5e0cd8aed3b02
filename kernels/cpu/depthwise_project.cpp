#include "kernels/cpu/depthwise_project.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace osprey::cpu {

namespace {

using i64 = int64_t;

// Depthwise outputs per tile: about 128 KiB of floats, so the tile is still in L2 when the
// projection reads it back.
constexpr i64 kTileFloats = 32 << 10;

float* tile_scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace

void depthwise_project_forward(const DepthwiseShape& s, int k, const float* x, const float* dw_w,
                               const float* dw_b, Activation act, const float* proj_w,
                               const float* proj_b, const float* residual, float* y) {
  const i64 rows = i64{s.n} * s.oh(), ow = s.ow();
  if (rows <= 0 || ow <= 0 || s.c <= 0 || k <= 0) return;
  const i64 rows_per_tile = std::max<i64>(1, kTileFloats / (ow * s.c));
  const i64 tiles = (rows + rows_per_tile - 1) / rows_per_tile;
  // Each tile's GEMM runs on its own thread: OpenBLAS (OpenMP build) stays single-threaded
  // inside a parallel region.
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
  for (i64 t = 0; t < tiles; ++t) {
    const i64 r0 = t * rows_per_tile, r1 = std::min(rows, r0 + rows_per_tile);
    const i64 pixels = (r1 - r0) * ow;
    float* d = tile_scratch(size_t(pixels * s.c));
    depthwise_conv2d_forward_rows(s, r0, r1, x, dw_w, dw_b, d);
    activation_forward(pixels * s.c, act, d, d);
    float* yt = y + r0 * ow * k;
    // y = bias (+ residual), then y += d W.
    for (i64 p = 0; p < pixels; ++p) {
      float* yp = yt + p * k;
      const float* rp = residual ? residual + (r0 * ow + p) * k : nullptr;
      for (int j = 0; j < k; ++j) yp[j] = (proj_b ? proj_b[j] : 0.0f) + (rp ? rp[j] : 0.0f);
    }
    sgemm(false, false, int(pixels), k, s.c, 1.0f, d, s.c, proj_w, k, 1.0f, yt, k);
  }
}

}  // namespace osprey::cpu
