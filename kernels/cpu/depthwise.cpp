#include "kernels/cpu/depthwise.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/vectorize.h"

namespace osprey::cpu {

namespace {

// Below this many multiply-adds the fork/join of a parallel region costs more than the work
// (and much more when the cores are shared with other processes).
constexpr int64_t kParallelMin = 1 << 15;

// Channels per register block: a fixed trip count lets the compiler keep the accumulators in
// vector registers across all the taps. Leftovers go in blocks of 16, then one short block.
constexpr int kBlock = 64;
constexpr int kSmallBlock = 16;

// Backward tasks cover a band of rows of one image, sized so the band's dy (read by the weight
// gradient, then again by the input gradient) is still in L2 the second time.
constexpr int64_t kBandBytes = 256 << 10;

using i64 = int64_t;

// Grow-only scratch owned by the calling thread: steady-state steps allocate nothing. Aligned
// to a cache line, so per-part partials padded to whole lines never share one.
double* partial_scratch(size_t n) {
  thread_local std::vector<double> buf;
  if (buf.size() < n + 8) buf.resize(n + 8);
  const auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - addr % 64) % 64) / sizeof(double);
}
const float* zeros(int c) {
  thread_local std::vector<float> buf;  // never written after resize
  if (buf.size() < static_cast<size_t>(c)) buf.resize(c, 0.0f);
  return buf.data();
}

// Runs body(c0, len) over channel blocks, with len a compile-time constant where possible.
template <class F>
OSPREY_INLINE void for_blocks(int c, F&& body) {
  int c0 = 0;
  for (; c0 + kBlock <= c; c0 += kBlock) body(c0, std::integral_constant<int, kBlock>());
  for (; c0 + kSmallBlock <= c; c0 += kSmallBlock)
    body(c0, std::integral_constant<int, kSmallBlock>());
  if (c0 < c) body(c0, c - c0);
}

// Runs body(o, T) over [a, e) in strips of T, then body(o, 1) for the rest; T and 1 are
// compile-time constants.
template <int T, class F>
OSPREY_INLINE void for_strips(int a, int e, F&& body) {
  int o = a;
  for (; o + T <= e; o += T) body(o, std::integral_constant<int, T>());
  for (; o < e; ++o) body(o, std::integral_constant<int, 1>());
}

// Stride 2 reads 2T + 1 input columns per row: a shorter strip keeps the pointers in registers.
template <int S>
constexpr int kStrip = S == 1 ? 4 : 2;

// Output columns [interior_begin, interior_end) have all three horizontal taps of a 3x3 inside
// (where the strip kernels run).
int interior_begin(const DepthwiseShape& s) {
  return (s.pad + s.stride - 1) / s.stride;
}
int interior_end(const DepthwiseShape& s) {
  const int a = interior_begin(s), last = s.w - 3 + s.pad;
  return last < 0 ? a : std::max(a, std::min(s.ow(), last / s.stride + 1));
}

// Taps t (of k) whose input o * s - p + t lies in [0, len), for one output coordinate o.
OSPREY_INLINE void taps_inside(int o, int s, int p, int k, int len, int& lo, int& hi) {
  const int start = o * s - p;
  lo = std::max(0, -start);
  hi = std::min(k, len - start);
}

// Outputs o in [0, out) whose tap t lands inside [0, len): lets the weight gradient run each
// tap over one contiguous range with no bounds checks.
OSPREY_INLINE void outputs_inside(int t, int s, int p, int len, int out, int& lo, int& hi) {
  const int a = p - t, b = len - 1 + p - t;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = b < 0 ? 0 : std::min(out, b / s + 1);
  hi = std::max(hi, lo);
}

// One output pixel, channels [0, len) of the block, ni x nj taps from xp / wp.
template <class T, class Len>
OSPREY_INLINE void forward_block(Len len, int ni, int nj, const T* xp, i64 xrow, int c,
                                 const float* wp, i64 wrow, const float* b, T* yp) {
  float acc[kBlock];
  for (int k = 0; k < len; ++k) acc[k] = b[k];
  for (int i = 0; i < ni; ++i)
    for (int j = 0; j < nj; ++j) {
      const T* xv = xp + i * xrow + j * c;
      const float* wv = wp + i * wrow + j * c;
      for (int k = 0; k < len; ++k) acc[k] += load_as_float(xv, k) * wv[k];
    }
  for (int k = 0; k < len; ++k) store_from_float(yp, k, acc[k]);
}

// The 3x3 fast paths below work on 16 channels at a time, written as a loop over the channels
// with the taps and a strip of N pixels as scalars inside: the vectoriser turns each scalar into
// one vector register, so the weights and sums stay in registers and each input vector is
// loaded once for all the outputs of the strip that use it. Pointers are offset to channel c0.
// T is the activations' storage type (float or bf16): read as float, rounded once when stored.

// Forward, stride S, every tap inside: outputs ow..ow+N-1 of a row whose input rows start at xr.
template <int S, int N, class T>
OSPREY_INLINE void forward_strip_3x3(const T* xr, i64 xrow, int c, const float* w, const float* b,
                                     int pad, int ow, T* yr) {
  const T* xp = xr + i64{ow * S - pad} * c;
  T* yp = yr + i64{ow} * c;
#pragma omp simd
  for (int k = 0; k < 16; ++k) {
    float wv[9], acc[N];
    for (int q = 0; q < 9; ++q) wv[q] = w[q * c + k];
    for (int t = 0; t < N; ++t) acc[t] = b[k];
#pragma GCC unroll 16
    for (int i = 0; i < 3; ++i)
#pragma GCC unroll 16
      for (int t = 0; t < N; ++t)
        for (int j = 0; j < 3; ++j)
          acc[t] += load_as_float(xp, i * xrow + i64{t * S + j} * c + k) * wv[i * 3 + j];
    for (int t = 0; t < N; ++t) store_from_float(yp, t * c + k, acc[t]);
  }
}

template <int S, class T>
OSPREY_INLINE void forward_row_3x3(const T* xr, i64 xrow, int c, const float* w, const float* b,
                                   int pad, int a, int e, int c_end, T* yr) {
  for (int c0 = 0; c0 < c_end; c0 += 16)
    for_strips<kStrip<S>>(a, e, [&](int ow, auto t) OSPREY_INLINE_LAMBDA {
      forward_strip_3x3<S, decltype(t)::value>(xr + c0, xrow, c, w + c0, b + c0, pad, ow, yr + c0);
    });
}

// Output rows r0..r1 of the flattened [N * OH] row index; y points at row r0's output.
template <class T>
OSPREY_CLONES void forward_rows(const DepthwiseShape& s, i64 r0, i64 r1, const T* x, const float* w,
                                const float* b, T* y) {
  const int oh_n = s.oh(), ow_n = s.ow(), c = s.c;
  const i64 xrow = i64{s.w} * c, wrow = i64{s.kw} * c;
  const bool k3 = s.kh == 3 && s.kw == 3 && (s.stride == 1 || s.stride == 2);
  const int a = interior_begin(s), e = interior_end(s);
  for (i64 r = r0; r < r1; ++r) {
    const int oh = static_cast<int>(r % oh_n);
    const T* xi = x + (r / oh_n) * s.h * xrow;
    T* yr = y + (r - r0) * ow_n * c;
    int i_lo, i_hi;
    taps_inside(oh, s.stride, s.pad, s.kh, s.h, i_lo, i_hi);
    // Whole 16-channel blocks of the interior take the strips; border columns and rows and
    // leftover channels go one pixel at a time.
    int c_fast = 0;
    if (k3 && i_lo == 0 && i_hi == 3) {
      c_fast = c / 16 * 16;
      const T* xr = xi + i64{oh * s.stride - s.pad} * xrow;
      if (s.stride == 1)
        forward_row_3x3<1>(xr, xrow, c, w, b, s.pad, a, e, c_fast, yr);
      else
        forward_row_3x3<2>(xr, xrow, c, w, b, s.pad, a, e, c_fast, yr);
    }
    for (int ow = 0; ow < ow_n; ++ow) {
      const int cb = ow >= a && ow < e ? c_fast : 0;
      if (cb == c) continue;
      T* yp = yr + i64{ow} * c + cb;
      int j_lo, j_hi;
      taps_inside(ow, s.stride, s.pad, s.kw, s.w, j_lo, j_hi);
      if (i_lo >= i_hi || j_lo >= j_hi) {  // window entirely in the padding
        for (int k = cb; k < c; ++k) store_from_float(yp, k - cb, b[k]);
        continue;
      }
      const T* xp = xi + i64{oh * s.stride - s.pad + i_lo} * xrow +
                    i64{ow * s.stride - s.pad + j_lo} * c + cb;
      const float* wp = w + i_lo * wrow + i64{j_lo} * c + cb;
      for_blocks(c - cb, [&](int c0, auto len) OSPREY_INLINE_LAMBDA {
        forward_block(len, i_hi - i_lo, j_hi - j_lo, xp + c0, xrow, c, wp + c0, wrow, b + cb + c0,
                      yp + c0);
      });
    }
  }
}

// Weight gradient, stride S, all three input rows inside: outputs ow..ow+N-1 of a row added to
// part [10][16] (the nine taps, then the bias), which holds one row's sums.
template <int S, int N, class T>
OSPREY_INLINE void weight_grad_strip_3x3(const T* xr, i64 xrow, int c, const T* dyr, int pad,
                                         int ow, float (&part)[10][16]) {
  const T* xp = xr + i64{ow * S - pad} * c;
  const T* gp = dyr + i64{ow} * c;
#pragma omp simd
  for (int k = 0; k < 16; ++k) {
    float acc[10];
    for (int q = 0; q < 10; ++q) acc[q] = part[q][k];
#pragma GCC unroll 16
    for (int t = 0; t < N; ++t) {
      const float g = load_as_float(gp, i64{t} * c + k);
      acc[9] += g;
#pragma GCC unroll 16
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          acc[i * 3 + j] += g * load_as_float(xp, i * xrow + i64{t * S + j} * c + k);
    }
    for (int q = 0; q < 10; ++q) part[q][k] = acc[q];
  }
}

template <int S, class T>
OSPREY_INLINE void weight_grad_row_3x3(const DepthwiseShape& s, const T* xr, const T* dyr, int a,
                                       int e, int c_end, double* pdw, double* pdb) {
  const int c = s.c, ow_n = s.ow();
  const i64 xrow = i64{s.w} * c;
  for (int c0 = 0; c0 < c_end; c0 += 16) {
    float part[10][16] = {};
    for_strips<kStrip<S>>(a, e, [&](int ow, auto t) OSPREY_INLINE_LAMBDA {
      weight_grad_strip_3x3<S, decltype(t)::value>(xr + c0, xrow, c, dyr + c0, s.pad, ow, part);
    });
    for (int ow = 0; ow < ow_n; ++ow) {  // border columns: only the taps inside
      if (ow == a) ow = e;
      if (ow >= ow_n) break;
      int j_lo, j_hi;
      taps_inside(ow, S, s.pad, 3, s.w, j_lo, j_hi);
      const T* gp = dyr + i64{ow} * c + c0;
      for (int k = 0; k < 16; ++k) part[9][k] += load_as_float(gp, k);
      for (int i = 0; i < 3; ++i)
        for (int j = j_lo; j < j_hi; ++j) {
          const T* xv = xr + i * xrow + i64{ow * S - s.pad + j} * c + c0;
          for (int k = 0; k < 16; ++k)
            part[i * 3 + j][k] += load_as_float(gp, k) * load_as_float(xv, k);
        }
    }
    for (int q = 0; q < 9; ++q)
      for (int k = 0; k < 16; ++k) pdw[q * c + c0 + k] += part[q][k];
    if (pdb)
      for (int k = 0; k < 16; ++k) pdb[c0 + k] += part[9][k];
  }
}

// Weight and bias gradients of output rows o0..o1 of one image, added to double partials (each
// a float sum over one row first: the float error stays that of a row). Off the 3x3 fast path,
// tap by tap: each (channel block, tap) sums one contiguous range of outputs, no bounds checks.
template <class T>
OSPREY_CLONES void weight_grad_rows(const DepthwiseShape& s, int o0, int o1, const T* xi,
                                    const T* dyi, double* pdw, double* pdb) {
  const int ow_n = s.ow(), c = s.c;
  const i64 xrow = i64{s.w} * c;
  const bool k3 = s.kh == 3 && s.kw == 3 && (s.stride == 1 || s.stride == 2);
  const int a = interior_begin(s), e = interior_end(s);
  for (int oh = o0; oh < o1; ++oh) {
    const T* dyr = dyi + i64{oh} * ow_n * c;
    int i_lo, i_hi;
    taps_inside(oh, s.stride, s.pad, s.kh, s.h, i_lo, i_hi);
    int c_fast = 0;
    if (pdw && k3 && i_lo == 0 && i_hi == 3) {
      c_fast = c / 16 * 16;
      const T* xr = xi + i64{oh * s.stride - s.pad} * xrow;
      if (s.stride == 1)
        weight_grad_row_3x3<1>(s, xr, dyr, a, e, c_fast, pdw, pdb);
      else
        weight_grad_row_3x3<2>(s, xr, dyr, a, e, c_fast, pdw, pdb);
    }
    for_blocks(c - c_fast, [&](int cb, auto len) OSPREY_INLINE_LAMBDA {
      const int c0 = c_fast + cb;
      float acc[kBlock];
      if (pdb) {
        for (int k = 0; k < len; ++k) acc[k] = 0.0f;
        for (int ow = 0; ow < ow_n; ++ow)
          for (int k = 0; k < len; ++k) acc[k] += load_as_float(dyr, i64{ow} * c + c0 + k);
        for (int k = 0; k < len; ++k) pdb[c0 + k] += acc[k];
      }
      if (!pdw) return;
      for (int i = i_lo; i < i_hi; ++i) {
        const T* xr = xi + i64{oh * s.stride - s.pad + i} * xrow + c0;
        for (int j = 0; j < s.kw; ++j) {
          int lo, hi;
          outputs_inside(j, s.stride, s.pad, s.w, ow_n, lo, hi);
          for (int k = 0; k < len; ++k) acc[k] = 0.0f;
          for (int ow = lo; ow < hi; ++ow) {
            const T* xv = xr + i64{ow * s.stride - s.pad + j} * c;
            const T* dv = dyr + i64{ow} * c + c0;
            for (int k = 0; k < len; ++k) acc[k] += load_as_float(dv, k) * load_as_float(xv, k);
          }
          double* pw = pdw + (i64{i} * s.kw + j) * c + c0;
          for (int k = 0; k < len; ++k) pw[k] += acc[k];
        }
      }
    });
  }
}

// Input gradient as a gather (each dx element written once: no zeroing, no races). Input
// (ih, iw) receives dy[oh][ow] * w[i][j] for every tap with oh * s - p + i == ih, i.e.
// i = (ih + p) mod s, then every s-th tap.
template <class T, class Len>
OSPREY_INLINE void input_grad_block(const DepthwiseShape& s, Len len, int ih, int iw, const T* dyi,
                                    const float* w, T* dxp) {
  const int c = s.c, oh_n = s.oh(), ow_n = s.ow();
  float acc[kBlock];
  for (int k = 0; k < len; ++k) acc[k] = 0.0f;
  for (int i = (ih + s.pad) % s.stride; i < s.kh; i += s.stride) {
    const int oh = (ih + s.pad - i) / s.stride;
    if (oh < 0) break;
    if (oh >= oh_n) continue;
    for (int j = (iw + s.pad) % s.stride; j < s.kw; j += s.stride) {
      const int ow = (iw + s.pad - j) / s.stride;
      if (ow < 0) break;
      if (ow >= ow_n) continue;
      const T* dv = dyi + (i64{oh} * ow_n + ow) * c;
      const float* wv = w + (i64{i} * s.kw + j) * c;
      for (int k = 0; k < len; ++k) acc[k] += load_as_float(dv, k) * wv[k];
    }
  }
  for (int k = 0; k < len; ++k) store_from_float(dxp, k, acc[k]);
}

// Input gradient, stride 1, all nine taps inside: inputs iw..iw+N-1 of row ih; tap (i, j) of
// input (ih, iw + t) reads dy at (ih + p - i, iw + t + p - j). dyp points at (ih + p, iw + p).
template <int N, class T>
OSPREY_INLINE void input_grad_strip_3x3(const T* dyp, i64 dyrow, int c, const float* w, T* dxp) {
#pragma omp simd
  for (int k = 0; k < 16; ++k) {
    float wv[9], acc[N];
    for (int q = 0; q < 9; ++q) wv[q] = w[q * c + k];
    for (int t = 0; t < N; ++t) acc[t] = 0.0f;
#pragma GCC unroll 16
    for (int i = 0; i < 3; ++i)
#pragma GCC unroll 16
      for (int t = 0; t < N; ++t)
        for (int j = 0; j < 3; ++j)
          acc[t] += load_as_float(dyp, i64{t - j} * c - i * dyrow + k) * wv[i * 3 + j];
    for (int t = 0; t < N; ++t) store_from_float(dxp, t * c + k, acc[t]);
  }
}

template <class T>
OSPREY_CLONES void input_grad_rows(const DepthwiseShape& s, int i0, int i1, const T* dyi,
                                   const float* w, T* dxi) {
  const int oh_n = s.oh(), ow_n = s.ow(), c = s.c, p = s.pad;
  const i64 dyrow = i64{ow_n} * c;
  const bool fast = s.kh == 3 && s.kw == 3 && s.stride == 1;
  // Inputs [ia, ie) of a row have all three horizontal taps inside.
  const int ia = std::max(0, 2 - p), ie = std::max(ia, std::min(s.w, ow_n - p));
  for (int ih = i0; ih < i1; ++ih) {
    T* dxr = dxi + i64{ih} * s.w * c;
    int c_fast = 0;
    if (fast && ih + p - 2 >= 0 && ih + p < oh_n) {
      c_fast = c / 16 * 16;
      for (int c0 = 0; c0 < c_fast; c0 += 16) {
        const T* dyp = dyi + i64{ih + p} * dyrow + i64{p} * c + c0;
        for_strips<4>(ia, ie, [&](int iw, auto t) OSPREY_INLINE_LAMBDA {
          input_grad_strip_3x3<decltype(t)::value>(dyp + i64{iw} * c, dyrow, c, w + c0,
                                                   dxr + i64{iw} * c + c0);
        });
      }
    }
    for (int iw = 0; iw < s.w; ++iw) {
      const int cb = iw >= ia && iw < ie ? c_fast : 0;
      if (cb == c) continue;
      for_blocks(c - cb, [&](int c0, auto len) OSPREY_INLINE_LAMBDA {
        input_grad_block(s, len, ih, iw, dyi + cb + c0, w + cb + c0, dxr + i64{iw} * c + cb + c0);
      });
    }
  }
}

int parts_for(i64 work, i64 tasks) {
  const i64 parts = work > kParallelMin ? std::max(1, omp_get_max_threads()) : 1;
  return static_cast<int>(std::max<i64>(1, std::min(parts, tasks)));
}

// The header's oh()/ow() truncate toward zero, so a kernel larger than the padded input would
// report one output; there is none.
bool has_output(const DepthwiseShape& s) {
  return s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw && s.oh() > 0 && s.ow() > 0;
}

template <class T>
void forward(const DepthwiseShape& s, const T* x, const float* w, const float* bias, T* y) {
  if (s.n <= 0 || s.c <= 0 || !has_output(s)) return;
  const float* b = bias ? bias : zeros(s.c);
  const i64 rows = i64{s.n} * s.oh();
  const int parts = parts_for(rows * s.ow() * s.c * s.kh * s.kw, rows);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p)
    forward_rows(s, rows * p / parts, rows * (p + 1) / parts, x, w, b,
                 y + rows * p / parts * s.ow() * s.c);
}

template <class T>
void backward(const DepthwiseShape& s, const T* x, const float* w, const T* dy, T* dx, float* dw,
              float* db) {
  if (s.n <= 0 || s.c <= 0) return;
  const i64 img_in = i64{s.h} * s.w * s.c;
  if (!has_output(s)) {
    if (dx) std::fill(dx, dx + s.n * img_in, T{});
    return;
  }
  if (!dx && !dw && !db) return;
  const int oh_n = s.oh(), ow_n = s.ow(), c = s.c;
  const i64 img_out = i64{oh_n} * ow_n * c, taps = i64{s.kh} * s.kw;

  // Bands of output rows per task: at most kBandBytes of float dy, and enough tasks to balance.
  // Sized as float for bf16 too: the same bands, so the same sums in the same order as fp32.
  const int threads = std::max(1, omp_get_max_threads());
  int band =
      static_cast<int>(std::clamp<i64>(kBandBytes / (i64{ow_n} * c * i64{sizeof(float)}), 1, oh_n));
  while (band > 1 && i64{s.n} * ((oh_n + band - 1) / band) < 4 * threads) band = (band + 1) / 2;
  const int bands = (oh_n + band - 1) / band;
  const i64 tasks = i64{s.n} * bands;
  const int parts = parts_for(s.n * img_out * taps, tasks);

  // Per-part double partials of dw then db, each part padded to whole cache lines.
  const bool want_w = dw || db;
  const i64 stride = ((taps + 1) * c + 7) & ~i64{7};
  double* part = want_w ? partial_scratch(static_cast<size_t>(parts * stride)) : nullptr;

#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    double* pdw = want_w ? part + p * stride : nullptr;
    if (pdw) std::fill(pdw, pdw + stride, 0.0);
    for (i64 t = tasks * p / parts; t < tasks * (p + 1) / parts; ++t) {
      const i64 img = t / bands;
      const int o0 = static_cast<int>(t % bands) * band, o1 = std::min(oh_n, o0 + band);
      const T* dyi = dy + img * img_out;
      if (want_w)
        weight_grad_rows(s, o0, o1, x + img * img_in, dyi, dw ? pdw : nullptr,
                         db ? pdw + taps * c : nullptr);
      if (dx) {
        // Input rows [o0 * s, o1 * s), the last band taking the rest: a partition of [0, H).
        const int i0 = std::min(o0 * s.stride, s.h);
        const int i1 = o1 == oh_n ? s.h : std::min(o1 * s.stride, s.h);
        input_grad_rows(s, i0, i1, dyi, w, dx + img * img_in);
      }
    }
  }
  if (!want_w) return;
  for (i64 k = 0; k < (taps + 1) * c; ++k) {
    float* out = k < taps * c ? dw : db;
    if (!out) continue;
    double sum = 0.0;
    for (int p = 0; p < parts; ++p) sum += part[p * stride + k];
    out[k < taps * c ? k : k - taps * c] += static_cast<float>(sum);
  }
}

}  // namespace

void depthwise_conv2d_forward(const DepthwiseShape& s, const float* x, const float* w,
                              const float* bias, float* y) {
  forward(s, x, w, bias, y);
}

void depthwise_conv2d_forward(const DepthwiseShape& s, const bf16* x, const float* w,
                              const float* bias, bf16* y) {
  forward(s, x, w, bias, y);
}

void depthwise_conv2d_forward_rows(const DepthwiseShape& s, int64_t r0, int64_t r1, const float* x,
                                   const float* w, const float* bias, float* y) {
  if (s.c <= 0 || r1 <= r0 || !has_output(s)) return;
  forward_rows(s, r0, r1, x, w, bias ? bias : zeros(s.c), y);
}

void depthwise_conv2d_backward(const DepthwiseShape& s, const float* x, const float* w,
                               const float* dy, float* dx, float* dw, float* db) {
  backward(s, x, w, dy, dx, dw, db);
}

void depthwise_conv2d_backward(const DepthwiseShape& s, const bf16* x, const float* w,
                               const bf16* dy, bf16* dx, float* dw, float* db) {
  backward(s, x, w, dy, dx, dw, db);
}

}  // namespace osprey::cpu
