#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace osprey::cpu {

namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define OSPREY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OSPREY_CLONES
#endif

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

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int oh = std::max(s.oh(), 0), ow = std::max(s.ow(), 0), c = s.c;
  if (s.n <= 0 || c <= 0) return;
  const int64_t img_in = static_cast<int64_t>(s.h) * s.w * c;
  const int64_t img_out = static_cast<int64_t>(oh) * ow * c;
  // Overlapping windows (stride < kernel) scatter into the same input, so the work is split by
  // image, which never races.
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

}  // namespace osprey::cpu
