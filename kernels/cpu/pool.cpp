#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/cpu/vectorize.h"

namespace osprey::cpu {

namespace {

// One output row. A pixel's channels are contiguous in NHWC, so each window position updates
// all C running maxima in one branch-free, vectorizable loop.
OSPREY_CLONES void pool_row(const Pool2dShape& s, const float* xi, int oh, int ow_count, float* y,
                            int32_t* am) {
  const int c = s.c;
  const int h0 = oh * s.stride - s.pad;
  const int i_lo = std::max(h0, 0), i_hi = std::min(h0 + s.kh, s.h);
  for (int ow = 0; ow < ow_count; ++ow, y += c, am += c) {
    const int w0 = ow * s.stride - s.pad;
    const int j_lo = std::max(w0, 0), j_hi = std::min(w0 + s.kw, s.w);
    if (i_lo >= i_hi || j_lo >= j_hi) {  // only with padding >= kernel, which PyTorch rejects
      std::fill(y, y + c, -std::numeric_limits<float>::infinity());
      std::fill(am, am + c, -1);
      continue;
    }
    // The first valid tap seeds the maxima, so padding never wins (it counts as -inf).
    const int32_t first = i_lo * s.w + j_lo;
    const float* x0 = xi + static_cast<int64_t>(first) * c;
    for (int ch = 0; ch < c; ++ch) {
      y[ch] = x0[ch];
      am[ch] = first;
    }
    for (int ih = i_lo; ih < i_hi; ++ih) {
      for (int iw = (ih == i_lo ? j_lo + 1 : j_lo); iw < j_hi; ++iw) {
        const int32_t idx = ih * s.w + iw;
        const float* xv = xi + static_cast<int64_t>(idx) * c;
        for (int ch = 0; ch < c; ++ch) {
          // Strict '>' keeps the first maximum; a NaN always wins, so it propagates as in
          // PyTorch.
          const float v = xv[ch];
          const bool take = v > y[ch] || v != v;
          y[ch] = take ? v : y[ch];
          am[ch] = take ? idx : am[ch];
        }
      }
    }
  }
}

}  // namespace

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int oh = s.oh(), ow = s.ow();
  if (s.n <= 0 || oh <= 0 || ow <= 0 || s.c <= 0) return;
  const int64_t img_in = static_cast<int64_t>(s.h) * s.w * s.c;
  const int64_t row_out = static_cast<int64_t>(ow) * s.c;
#pragma omp parallel for schedule(static) if (s.n * oh * row_out > 4096)
  for (int64_t r = 0; r < static_cast<int64_t>(s.n) * oh; ++r) {
    const int img = static_cast<int>(r / oh);
    pool_row(s, x + img * img_in, static_cast<int>(r % oh), ow, y + r * row_out,
             argmax + r * row_out);
  }
}

// Windows that never overlap (stride >= kernel, the usual 2x2/2 pooling): every input lies in
// at most one window, so dx is written in one pass (gradient or zero) instead of being zeroed
// and then scattered into.
OSPREY_CLONES void pool_backward_row(const Pool2dShape& s, int ih, int ow_count,
                                     const float* dy_row, const int32_t* am_row, float* dx) {
  const int c = s.c;
  for (int iw = 0; iw < s.w; ++iw, dx += c) {
    const int ow = (iw + s.pad) / s.stride, j = (iw + s.pad) % s.stride;
    if (j >= s.kw || ow >= ow_count) {
      std::fill(dx, dx + c, 0.0f);
      continue;
    }
    const int32_t idx = ih * s.w + iw;
    const float* g = dy_row + static_cast<int64_t>(ow) * c;
    const int32_t* a = am_row + static_cast<int64_t>(ow) * c;
    for (int ch = 0; ch < c; ++ch) dx[ch] = a[ch] == idx ? g[ch] : 0.0f;
  }
}

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int oh = std::max(s.oh(), 0), ow = std::max(s.ow(), 0), c = s.c;
  if (s.n <= 0 || c <= 0) return;
  const int64_t img_in = static_cast<int64_t>(s.h) * s.w * c;
  const int64_t row_out = static_cast<int64_t>(ow) * c, img_out = oh * row_out;
  if (s.stride >= s.kh && s.stride >= s.kw) {
#pragma omp parallel for schedule(static) if (s.n * img_in > 4096)
    for (int64_t r = 0; r < static_cast<int64_t>(s.n) * s.h; ++r) {
      const int img = static_cast<int>(r / s.h), ih = static_cast<int>(r % s.h);
      float* dx_row = dx + r * s.w * c;
      const int o_h = (ih + s.pad) / s.stride, i = (ih + s.pad) % s.stride;
      if (i >= s.kh || o_h >= oh) {
        std::memset(dx_row, 0, static_cast<size_t>(s.w) * c * sizeof(float));
        continue;
      }
      const int64_t off = img * img_out + o_h * row_out;
      pool_backward_row(s, ih, ow, dy + off, argmax + off, dx_row);
    }
    return;
  }
  // Overlapping windows scatter into the same input, so the work is split by image, which
  // never races.
#pragma omp parallel for schedule(static) if (s.n * img_in > 4096)
  for (int img = 0; img < s.n; ++img) {
    float* dxi = dx + img * img_in;
    std::memset(dxi, 0, static_cast<size_t>(img_in) * sizeof(float));
    const float* dyi = dy + img * img_out;
    const int32_t* ai = argmax + img * img_out;
    for (int64_t p = 0; p < img_out; p += c) {
      for (int ch = 0; ch < c; ++ch) {
        const int32_t idx = ai[p + ch];
        if (idx >= 0) dxi[static_cast<int64_t>(idx) * c + ch] += dyi[p + ch];
      }
    }
  }
}

// Channels are contiguous in NHWC, so each pixel adds one vectorizable run into the C sums.
void global_avg_pool_forward(int n, int hw, int c, const float* x, float* y) {
  if (n <= 0 || c <= 0) return;
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(n) * hw * c > (1 << 15))
  for (int img = 0; img < n; ++img) {
    const float* xi = x + static_cast<int64_t>(img) * hw * c;
    float* yo = y + static_cast<int64_t>(img) * c;
    std::fill(yo, yo + c, 0.0f);
    for (int p = 0; p < hw; ++p)
      for (int ch = 0; ch < c; ++ch) yo[ch] += xi[static_cast<int64_t>(p) * c + ch];
    // Divided rather than multiplied by 1/hw, as PyTorch does, for identical rounding.
    if (hw > 0)
      for (int ch = 0; ch < c; ++ch) yo[ch] /= static_cast<float>(hw);
  }
}

void global_avg_pool_backward(int n, int hw, int c, const float* dy, float* dx) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(n) * hw * c > (1 << 15))
  for (int img = 0; img < n; ++img) {
    const float* g = dy + static_cast<int64_t>(img) * c;
    float* dxi = dx + static_cast<int64_t>(img) * hw * c;
    for (int ch = 0; ch < c; ++ch) dxi[ch] = g[ch] / static_cast<float>(hw);
    for (int p = 1; p < hw; ++p)
      std::memcpy(dxi + static_cast<int64_t>(p) * c, dxi, static_cast<size_t>(c) * sizeof(float));
  }
}

}  // namespace osprey::cpu
