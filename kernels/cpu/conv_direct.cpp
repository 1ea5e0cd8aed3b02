// The register-tiled direct convolution loops (see conv_detail.h for when they run).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_detail.h"

namespace osprey::cpu::conv_detail {
namespace {

// ---- Direct path --------------------------------------------------------------------------
//
// One output row at a time. The KH rows under it are copied into a zero-padded band
// [KH][width][channels] (a few KB), so every output pixel's taps are KH contiguous runs of
// KW * channels floats with no bounds checks. Weights are rearranged tap-major ([tap][out]) so
// that a block of output channels is contiguous.

struct Band {
  const float* data;
  int64_t pitch;  // floats per band row
  int64_t step;   // floats between neighbouring output pixels (stride * channels)
  int64_t run;    // KW * channels
};

// Band of input rows under output row oh, for the forward pass and dW.
Band input_band(const Conv2dShape& s, const float* xi, int oh, float* buf) {
  const int64_t c = s.c, pitch = (static_cast<int64_t>(s.w) + 2 * s.pad) * c;
  const int64_t left = s.pad * c, inner = s.w * c;
  for (int i = 0; i < s.kh; ++i) {
    float* row = buf + i * pitch;
    const int ih = oh * s.stride - s.pad + i;
    if (ih < 0 || ih >= s.h) {
      std::memset(row, 0, pitch * sizeof(float));
      continue;
    }
    std::memset(row, 0, left * sizeof(float));
    std::memcpy(row + left, xi + ih * inner, inner * sizeof(float));
    std::memset(row + left + inner, 0, left * sizeof(float));
  }
  return Band{buf, pitch, s.stride * c, s.kw * c};
}

// Band of dY rows for input row ih (stride 1): band row i holds dY row ih + P - i, and band
// column u holds dY column u - (KW - 1 - P), so input column iw reads columns iw .. iw + KW - 1
// against the kernel flipped left to right.
Band grad_band(const Conv2dShape& s, const Geometry& g, const float* dyi, int ih, float* buf) {
  const int64_t k = s.k, width = s.w + s.kw - 1, pitch = width * k;
  const int shift = s.kw - 1 - s.pad;  // band column of dY column 0
  const int ow_lo = std::max(0, -shift), ow_hi = std::min(g.ow, static_cast<int>(width) - shift);
  for (int i = 0; i < s.kh; ++i) {
    float* row = buf + i * pitch;
    const int oh = ih + s.pad - i;
    if (oh < 0 || oh >= g.oh || ow_lo >= ow_hi) {
      std::memset(row, 0, pitch * sizeof(float));
      continue;
    }
    const int64_t lo = (shift + ow_lo) * k, hi = (shift + ow_hi) * k;
    std::memset(row, 0, lo * sizeof(float));
    std::memcpy(row + lo, dyi + (static_cast<int64_t>(oh) * g.ow + ow_lo) * k,
                (hi - lo) * sizeof(float));
    std::memset(row + hi, 0, (pitch - hi) * sizeof(float));
  }
  return Band{buf, pitch, k, s.kw * k};
}

// Generic vectors: GCC maps them onto SSE, AVX2 or AVX-512 registers according to the target of
// the function they are inlined into. (With plain float arrays GCC scalarizes accumulators.)
typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

// By reference, never by value: vector arguments would raise the AVX ABI question (-Wpsabi).
template <class V>
inline void vload(V& v, const float* p) {
  std::memcpy(&v, p, sizeof(V));
}
template <class V>
inline void vstore(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

#define OSPREY_INLINE __attribute__((always_inline)) inline

// PB output pixels x KV vectors of output channels, accumulated in registers over all taps:
// per tap, KV weight loads and PB broadcasts feed PB * KV multiply-adds.
template <class V, int PB, int KV>
OSPREY_INLINE void out_tile(const Band& b, int kh, const float* wt, int n_out, int k0,
                            const float* bias, int ow0, float* y) {
  constexpr int kL = sizeof(V) / sizeof(float);
  V acc[PB][KV];
  for (int v = 0; v < KV; ++v) {
    V init = {};
    if (bias) vload(init, bias + k0 + v * kL);
    for (int p = 0; p < PB; ++p) acc[p][v] = init;
  }
  const float* wk = wt + k0;
  for (int i = 0; i < kh; ++i) {
    const float* src = b.data + ow0 * b.step + i * b.pitch;
    for (int64_t t = 0; t < b.run; ++t, wk += n_out) {
      V w[KV];
      for (int v = 0; v < KV; ++v) vload(w[v], wk + v * kL);
      for (int p = 0; p < PB; ++p) {
        const float xv = src[p * b.step + t];
        for (int v = 0; v < KV; ++v) acc[p][v] += xv * w[v];
      }
    }
  }
  for (int p = 0; p < PB; ++p)
    for (int v = 0; v < KV; ++v)
      vstore(y + static_cast<int64_t>(ow0 + p) * n_out + k0 + v * kL, acc[p][v]);
}

template <class V, int PB, int KV>
OSPREY_INLINE void out_blocks(const Band& b, int kh, int ow_count, int n_out, const float* wt,
                              const float* bias, float* y, int& k0) {
  constexpr int kL = sizeof(V) / sizeof(float);
  for (; k0 + KV * kL <= n_out; k0 += KV * kL) {
    int ow = 0;
    for (; ow + PB <= ow_count; ow += PB) out_tile<V, PB, KV>(b, kh, wt, n_out, k0, bias, ow, y);
    for (; ow < ow_count; ++ow) out_tile<V, 1, KV>(b, kh, wt, n_out, k0, bias, ow, y);
  }
}

// One output row: y[ow][k] = bias[k] + sum over taps of band * wt[tap][k].
template <class V, int PB, int KV>
OSPREY_INLINE void out_row(const Band& b, int kh, int ow_count, int n_out, const float* wt,
                           const float* bias, float* y) {
  int k0 = 0;
  out_blocks<V, PB, KV>(b, kh, ow_count, n_out, wt, bias, y, k0);
  if constexpr (KV > 2) out_blocks<V, PB, 2>(b, kh, ow_count, n_out, wt, bias, y, k0);
  out_blocks<V, PB, 1>(b, kh, ow_count, n_out, wt, bias, y, k0);
  for (int ow = 0; ow < ow_count && k0 < n_out; ++ow) {  // channels past the last full vector
    const float* base = b.data + ow * b.step;
    for (int k = k0; k < n_out; ++k) {
      float acc = bias ? bias[k] : 0.0f;
      const float* wk = wt + k;
      for (int i = 0; i < kh; ++i)
        for (int64_t t = 0; t < b.run; ++t, wk += n_out) acc += base[i * b.pitch + t] * *wk;
      y[static_cast<int64_t>(ow) * n_out + k] = acc;
    }
  }
}

// TB taps x KV vectors of output channels of the weight gradient, summed over a row's pixels:
// per pixel, KV loads of dY and TB broadcasts feed TB * KV multiply-adds.
template <class V, int TB, int KV>
OSPREY_INLINE void grad_tile(const float* src, int64_t step, int ow_count, const float* dy,
                             int n_out, int k0, float* dwt) {
  constexpr int kL = sizeof(V) / sizeof(float);
  V acc[TB][KV];
  for (int q = 0; q < TB; ++q)
    for (int v = 0; v < KV; ++v) vload(acc[q][v], dwt + q * n_out + k0 + v * kL);
  for (int ow = 0; ow < ow_count; ++ow) {
    V gv[KV];
    for (int v = 0; v < KV; ++v) vload(gv[v], dy + static_cast<int64_t>(ow) * n_out + k0 + v * kL);
    for (int q = 0; q < TB; ++q) {
      const float xv = src[ow * step + q];
      for (int v = 0; v < KV; ++v) acc[q][v] += xv * gv[v];
    }
  }
  for (int q = 0; q < TB; ++q)
    for (int v = 0; v < KV; ++v) vstore(dwt + q * n_out + k0 + v * kL, acc[q][v]);
}

template <class V, int TB, int KV>
OSPREY_INLINE void grad_blocks(const float* src, int64_t step, int64_t run, int ow_count,
                               const float* dy, int n_out, float* dwt, int& k0) {
  constexpr int kL = sizeof(V) / sizeof(float);
  for (; k0 + KV * kL <= n_out; k0 += KV * kL) {
    int64_t t = 0;
    for (; t + TB <= run; t += TB)
      grad_tile<V, TB, KV>(src + t, step, ow_count, dy, n_out, k0, dwt + t * n_out);
    for (; t < run; ++t)
      grad_tile<V, 1, KV>(src + t, step, ow_count, dy, n_out, k0, dwt + t * n_out);
  }
}

// One output row's contribution to dwt[tap][k] (taps ordered as the weight's [KH][KW][C]).
template <class V, int TB, int KV>
OSPREY_INLINE void grad_row(const Band& b, int kh, int ow_count, int n_out, const float* dy,
                            float* dwt) {
  for (int i = 0; i < kh; ++i) {
    const float* src = b.data + i * b.pitch;
    float* dk = dwt + i * b.run * n_out;
    int k0 = 0;
    grad_blocks<V, TB, KV>(src, b.step, b.run, ow_count, dy, n_out, dk, k0);
    if constexpr (KV > 2) grad_blocks<V, TB, 2>(src, b.step, b.run, ow_count, dy, n_out, dk, k0);
    grad_blocks<V, TB, 1>(src, b.step, b.run, ow_count, dy, n_out, dk, k0);
    for (int64_t t = 0; t < b.run && k0 < n_out; ++t)
      for (int k = k0; k < n_out; ++k)
        for (int ow = 0; ow < ow_count; ++ow)
          dk[t * n_out + k] += src[ow * b.step + t] * dy[static_cast<int64_t>(ow) * n_out + k];
  }
}

// One instantiation per instruction set, each tile sized to its register file (32 zmm, 16 ymm,
// 16 xmm), picked once at run time: a baseline x86-64 build still runs at full width.
using OutRowFn = void (*)(const Band&, int, int, int, const float*, const float*, float*);
using GradRowFn = void (*)(const Band&, int, int, int, const float*, float*);

struct DirectKernels {
  OutRowFn out;
  GradRowFn grad;
};

#if defined(__GNUC__) && defined(__x86_64__)
#if defined(__clang__)
// clang (the fuzz and sanitizer builds) knows neither the psABI levels nor f16c/movbe/lzcnt in
// __builtin_cpu_supports, so its variants name the features they use and check exactly those.
#define OSPREY_ISA_V4 "avx512f,avx512vl,avx512bw,avx512dq,avx512cd,avx2,fma,bmi,bmi2"
#define OSPREY_ISA_V3 "avx2,fma,bmi,bmi2"
bool cpu_has_v4() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("bmi2");
}
bool cpu_has_v3() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
#else
#define OSPREY_ISA_V4 "arch=x86-64-v4"
#define OSPREY_ISA_V3 "arch=x86-64-v3"
bool cpu_has_v4() {
  return __builtin_cpu_supports("x86-64-v4");
}
bool cpu_has_v3() {
  return __builtin_cpu_supports("x86-64-v3");
}
#endif
#define OSPREY_ISA(name, isa, V, P, KV)                                                            \
  __attribute__((target(isa))) void out_row_##name(const Band& b, int kh, int ow, int n,           \
                                                   const float* wt, const float* bias, float* y) { \
    out_row<V, P, KV>(b, kh, ow, n, wt, bias, y);                                                  \
  }                                                                                                \
  __attribute__((target(isa))) void grad_row_##name(const Band& b, int kh, int ow, int n,          \
                                                    const float* dy, float* dwt) {                 \
    grad_row<V, P, KV>(b, kh, ow, n, dy, dwt);                                                     \
  }
OSPREY_ISA(avx512, OSPREY_ISA_V4, Vec16, 6, 4)
OSPREY_ISA(avx2, OSPREY_ISA_V3, Vec8, 4, 2)
#undef OSPREY_ISA
#endif

void out_row_base(const Band& b, int kh, int ow, int n, const float* wt, const float* bias,
                  float* y) {
  out_row<Vec4, 4, 2>(b, kh, ow, n, wt, bias, y);
}
void grad_row_base(const Band& b, int kh, int ow, int n, const float* dy, float* dwt) {
  grad_row<Vec4, 4, 2>(b, kh, ow, n, dy, dwt);
}

const DirectKernels& direct_kernels() {
  static const DirectKernels k = [] {
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (cpu_has_v4()) return DirectKernels{out_row_avx512, grad_row_avx512};
    if (cpu_has_v3()) return DirectKernels{out_row_avx2, grad_row_avx2};
#endif
    return DirectKernels{out_row_base, grad_row_base};
  }();
  return k;
}

int64_t input_band_floats(const Conv2dShape& s) {
  return static_cast<int64_t>(s.kh) * (static_cast<int64_t>(s.w) + 2 * s.pad) * s.c;
}

}  // namespace

void direct_forward(const Conv2dShape& s, const Geometry& g, const float* x, const float* w,
                    const float* bias, float* y) {
  const OutRowFn row_fn = direct_kernels().out;
  float* wt = scratch(g.patch * s.k, 1);  // [tap][K]
  for (int k = 0; k < s.k; ++k)
    for (int64_t t = 0; t < g.patch; ++t) wt[t * s.k + k] = w[k * g.patch + t];
#pragma omp parallel for schedule(static) if (s.n * g.img_rows * g.patch * s.k > kParallelMin)
  for (int64_t r = 0; r < static_cast<int64_t>(s.n) * g.oh; ++r) {
    const int img = static_cast<int>(r / g.oh), oh = static_cast<int>(r % g.oh);
    const Band b = input_band(s, x + img * g.img_in, oh, scratch(input_band_floats(s), 2));
    row_fn(b, s.kh, g.ow, s.k, wt, bias, y + r * g.ow * s.k);
  }
}

// dx at stride 1 is the convolution of dY with the weights flipped in both spatial axes and
// with the roles of C and K swapped: the forward row kernel over a band of dY.
void direct_backward_data(const Conv2dShape& s, const Geometry& g, const float* w, const float* dy,
                          float* dx) {
  const OutRowFn row_fn = direct_kernels().out;
  const int64_t taps = static_cast<int64_t>(s.kh) * s.kw * s.k;
  float* wf = scratch(taps * s.c, 1);  // [i][KW - 1 - j][k][c]
  for (int i = 0; i < s.kh; ++i)
    for (int jj = 0; jj < s.kw; ++jj)
      for (int k = 0; k < s.k; ++k)
        std::memcpy(wf + ((static_cast<int64_t>(i) * s.kw + jj) * s.k + k) * s.c,
                    w + ((static_cast<int64_t>(k) * s.kh + i) * s.kw + (s.kw - 1 - jj)) * s.c,
                    s.c * sizeof(float));
  const int64_t band = static_cast<int64_t>(s.kh) * (s.w + s.kw - 1) * s.k;
#pragma omp parallel for schedule(static) if (s.n * g.img_in * taps > kParallelMin)
  for (int64_t r = 0; r < static_cast<int64_t>(s.n) * s.h; ++r) {
    const int img = static_cast<int>(r / s.h), ih = static_cast<int>(r % s.h);
    const Band b = grad_band(s, g, dy + img * g.img_rows * s.k, ih, scratch(band, 2));
    row_fn(b, s.kh, s.w, s.c, wf, nullptr, dx + r * s.w * s.c);
  }
}

// Each thread sums an image's rows in float (short sums), then folds them into double totals,
// so long batches do not drift; the totals are merged once at the end.
void direct_backward_params(const Conv2dShape& s, const Geometry& g, const float* x,
                            const float* dy, float* dw, float* db) {
  const GradRowFn row_fn = direct_kernels().grad;
  const int64_t nw = g.patch * s.k;
#pragma omp parallel if (s.n * g.img_rows * nw > kParallelMin)
  {
    thread_local std::vector<double> total;
    total.assign(nw + s.k, 0.0);
    float* part = scratch(nw + s.k, 3);
    float* band = scratch(input_band_floats(s), 2);
#pragma omp for schedule(static) nowait
    for (int img = 0; img < s.n; ++img) {
      std::fill(part, part + nw + s.k, 0.0f);
      for (int oh = 0; oh < g.oh; ++oh) {
        const float* dyr = dy + (img * g.img_rows + static_cast<int64_t>(oh) * g.ow) * s.k;
        const Band b = input_band(s, x + img * g.img_in, oh, band);
        row_fn(b, s.kh, g.ow, s.k, dyr, part);
        for (int ow = 0; ow < g.ow; ++ow)
          for (int k = 0; k < s.k; ++k) part[nw + k] += dyr[static_cast<int64_t>(ow) * s.k + k];
      }
      for (int64_t t = 0; t < nw + s.k; ++t) total[t] += part[t];
    }
#pragma omp critical
    {
      if (dw)
        for (int k = 0; k < s.k; ++k)
          for (int64_t t = 0; t < g.patch; ++t)
            dw[k * g.patch + t] += static_cast<float>(total[t * s.k + k]);
      if (db)
        for (int k = 0; k < s.k; ++k) db[k] += static_cast<float>(total[nw + k]);
    }
  }
}

}  // namespace osprey::cpu::conv_detail
