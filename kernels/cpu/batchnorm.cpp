#include "kernels/cpu/batchnorm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/vectorize.h"

namespace osprey::cpu {

namespace {

// Below this many elements the fork/join of a parallel region costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

// Grow-only scratch owned by the calling thread (the team writes into it during the call):
// steady-state steps allocate nothing. Aligned to a cache line, so per-part partials padded to
// whole lines never share one. Slot 0: per-part double partials; slot 1: per-channel constants.
template <class T>
T* scratch(size_t n, int slot) {
  thread_local std::vector<T> buf[2];
  const size_t pad = 64 / sizeof(T);
  if (buf[slot].size() < n + pad) buf[slot].resize(n + pad);
  const auto addr = reinterpret_cast<uintptr_t>(buf[slot].data());
  return buf[slot].data() + ((64 - addr % 64) % 64) / sizeof(T);
}

// Per-part partials are padded to whole cache lines so that parts never share one.
int64_t padded(int c) {
  return (static_cast<int64_t>(c) + 7) & ~int64_t{7};
}

// Work is split into one contiguous band of rows per thread ("part"). The split depends only
// on the thread count, so results are reproducible run to run.
int parts_for(int64_t m, int c) {
  return m * c > kParallelMin ? std::max(1, omp_get_max_threads()) : 1;
}

template <Activation A>
OSPREY_INLINE float activate(float v) {
  // "v < 0 ? 0 : v" lets NaN through, as PyTorch does, so a diverging run stays visible.
  if (A == Activation::relu) return v < 0.0f ? 0.0f : v;
  if (A == Activation::relu6) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

// g where keep, else +0. As a bit mask rather than "keep ? g : 0": GCC turns a select that
// feeds "sum += ..." into a conditional add, and the loop then does not vectorise.
OSPREY_INLINE float keep_if(bool keep, float g) {
  uint32_t bits;
  std::memcpy(&bits, &g, sizeof bits);
  bits &= 0u - static_cast<uint32_t>(keep);
  std::memcpy(&g, &bits, sizeof bits);
  return g;
}

// dy where the activation passed its input through, 0 where it clamped; the mask comes from
// the saved output (relu: y > 0; relu6: 0 < y < 6). Activation::none never reads y (may be null).
template <Activation A>
OSPREY_INLINE float masked(const float* y, const float* dy, int64_t i) {
  if (A == Activation::relu) return keep_if(y[i] > 0.0f, dy[i]);
  if (A == Activation::relu6) return keep_if((y[i] > 0.0f) & (y[i] < 6.0f), dy[i]);
  return dy[i];
}

// Shifting by the first row keeps sum(d^2)/m - mean(d)^2 free of cancellation when
// |mean| >> std; sums are in double.
OSPREY_CLONES void stats_rows(int64_t r0, int64_t r1, int c, const float* __restrict x,
                              const float* __restrict shift, double* __restrict s,
                              double* __restrict q) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    for (int k = 0; k < c; ++k) {
      const double d = static_cast<double>(xr[k]) - static_cast<double>(shift[k]);
      s[k] += d;
      q[k] += d * d;
    }
  }
}

// (x - mean) is formed first so a large mean does not cost precision in x * scale.
template <Activation A>
OSPREY_INLINE void forward_impl(int64_t r0, int64_t r1, int c, const float* x, const float* mean,
                                const float* scale, const float* beta, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    float* yr = y + r * c;
    for (int k = 0; k < c; ++k) yr[k] = activate<A>((xr[k] - mean[k]) * scale[k] + beta[k]);
  }
}

// Out-of-place and in-place variants: restrict lets both vectorise without a runtime overlap
// check (which would send y == x down a scalar path).
OSPREY_CLONES void forward_rows(int64_t r0, int64_t r1, int c, Activation act,
                                const float* __restrict x, const float* __restrict mean,
                                const float* __restrict scale, const float* __restrict beta,
                                float* __restrict y) {
  if (act == Activation::relu)
    return forward_impl<Activation::relu>(r0, r1, c, x, mean, scale, beta, y);
  if (act == Activation::relu6)
    return forward_impl<Activation::relu6>(r0, r1, c, x, mean, scale, beta, y);
  forward_impl<Activation::none>(r0, r1, c, x, mean, scale, beta, y);
}

OSPREY_CLONES void forward_rows_inplace(int64_t r0, int64_t r1, int c, Activation act,
                                        float* __restrict y, const float* __restrict mean,
                                        const float* __restrict scale,
                                        const float* __restrict beta) {
  if (act == Activation::relu)
    return forward_impl<Activation::relu>(r0, r1, c, y, mean, scale, beta, y);
  if (act == Activation::relu6)
    return forward_impl<Activation::relu6>(r0, r1, c, y, mean, scale, beta, y);
  forward_impl<Activation::none>(r0, r1, c, y, mean, scale, beta, y);
}

// The reduction pass of the backward: per channel sum(dz) and sum(dz * (x - mean)) in double,
// dz = dy * mask. With eval-mode statistics dx = a * dz needs nothing else, so it is written in
// the same pass (kWriteDx). dx may alias dy: each element is read before it is written.
template <Activation A, bool kWriteDx>
OSPREY_INLINE void sums_impl(int64_t r0, int64_t r1, int c, const float* x, const float* y,
                             const float* dy, const float* mean, const float* a, double* sdz,
                             double* sdzx, float* dx) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * c;
    for (int k = 0; k < c; ++k) {
      const float dz = masked<A>(y, dy, o + k);
      sdz[k] += dz;
      sdzx[k] += static_cast<double>(dz) * static_cast<double>(x[o + k] - mean[k]);
      if (kWriteDx) dx[o + k] = a[k] * dz;
    }
  }
}

template <bool kWriteDx>
OSPREY_INLINE void sums_dispatch(int64_t r0, int64_t r1, int c, Activation act, const float* x,
                                 const float* y, const float* dy, const float* mean, const float* a,
                                 double* sdz, double* sdzx, float* dx) {
  if (act == Activation::relu)
    return sums_impl<Activation::relu, kWriteDx>(r0, r1, c, x, y, dy, mean, a, sdz, sdzx, dx);
  if (act == Activation::relu6)
    return sums_impl<Activation::relu6, kWriteDx>(r0, r1, c, x, y, dy, mean, a, sdz, sdzx, dx);
  sums_impl<Activation::none, kWriteDx>(r0, r1, c, x, y, dy, mean, a, sdz, sdzx, dx);
}

// dx is not restrict here: it may alias dy.
OSPREY_CLONES void sums_rows(int64_t r0, int64_t r1, int c, Activation act,
                             const float* __restrict x, const float* __restrict y, const float* dy,
                             const float* __restrict mean, const float* __restrict a,
                             double* __restrict sdz, double* __restrict sdzx, float* dx) {
  if (dx)
    sums_dispatch<true>(r0, r1, c, act, x, y, dy, mean, a, sdz, sdzx, dx);
  else
    sums_dispatch<false>(r0, r1, c, act, x, y, dy, mean, a, sdz, sdzx, dx);
}

// The elementwise pass of the training-mode backward, with the per-channel constants folded:
// dx = a * dz - b * (x - mean) - d.
template <Activation A>
OSPREY_INLINE void dx_impl(int64_t r0, int64_t r1, int c, const float* x, const float* y,
                           const float* dy, const float* mean, const float* coef, float* dx) {
  const float *a = coef, *b = coef + c, *d = coef + 2 * c;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * c;
    for (int k = 0; k < c; ++k)
      dx[o + k] = a[k] * masked<A>(y, dy, o + k) - b[k] * (x[o + k] - mean[k]) - d[k];
  }
}

OSPREY_CLONES void dx_rows(int64_t r0, int64_t r1, int c, Activation act, const float* __restrict x,
                           const float* __restrict y, const float* __restrict dy,
                           const float* __restrict mean, const float* __restrict coef,
                           float* __restrict dx) {
  if (act == Activation::relu)
    return dx_impl<Activation::relu>(r0, r1, c, x, y, dy, mean, coef, dx);
  if (act == Activation::relu6)
    return dx_impl<Activation::relu6>(r0, r1, c, x, y, dy, mean, coef, dx);
  dx_impl<Activation::none>(r0, r1, c, x, y, dy, mean, coef, dx);
}

// dx == dy (gradient computed in place).
OSPREY_CLONES void dx_rows_inplace(int64_t r0, int64_t r1, int c, Activation act,
                                   const float* __restrict x, const float* __restrict y,
                                   float* __restrict g, const float* __restrict mean,
                                   const float* __restrict coef) {
  if (act == Activation::relu) return dx_impl<Activation::relu>(r0, r1, c, x, y, g, mean, coef, g);
  if (act == Activation::relu6)
    return dx_impl<Activation::relu6>(r0, r1, c, x, y, g, mean, coef, g);
  dx_impl<Activation::none>(r0, r1, c, x, y, g, mean, coef, g);
}

}  // namespace

void batchnorm_stats(int64_t m, int c, const float* x, float* mean, float* var) {
  if (c <= 0) return;
  if (m <= 0) {  // an empty batch has no statistics; zeros keep the caller's buffers finite
    std::fill(mean, mean + c, 0.0f);
    std::fill(var, var + c, 0.0f);
    return;
  }
  const int parts = parts_for(m, c);
  const int64_t cp = padded(c);
  double* part = scratch<double>(static_cast<size_t>(parts) * 2 * cp, 0);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    double* s = part + p * 2 * cp;
    std::fill(s, s + 2 * cp, 0.0);
    stats_rows(m * p / parts, m * (p + 1) / parts, c, x, x, s, s + cp);
  }
  for (int k = 0; k < c; ++k) {
    double s = 0.0, q = 0.0;
    for (int p = 0; p < parts; ++p) s += part[p * 2 * cp + k], q += part[p * 2 * cp + cp + k];
    const double mu = s / static_cast<double>(m);
    mean[k] = static_cast<float>(static_cast<double>(x[k]) + mu);
    var[k] = static_cast<float>(std::max(q / static_cast<double>(m) - mu * mu, 0.0));
  }
}

void batchnorm_act_forward(int64_t m, int c, const float* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           float* y) {
  if (m <= 0 || c <= 0) return;
  float* scale = scratch<float>(2 * static_cast<size_t>(c), 1);
  float* shift = scale + c;
  for (int k = 0; k < c; ++k) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[k]) + eps);
    scale[k] = static_cast<float>(invstd * (gamma ? gamma[k] : 1.0f));
    shift[k] = beta ? beta[k] : 0.0f;
  }
  const int parts = parts_for(m, c);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    const int64_t r0 = m * p / parts, r1 = m * (p + 1) / parts;
    if (x == y)
      forward_rows_inplace(r0, r1, c, act, y, mean, scale, shift);
    else
      forward_rows(r0, r1, c, act, x, mean, scale, shift, y);
  }
}

void batchnorm_act_backward(int64_t m, int c, const float* x, const float* y, const float* dy,
                            const float* mean, const float* var, const float* gamma, float eps,
                            Activation act, bool batch_stats, float* dx, float* dgamma,
                            float* dbeta, const CrossProcessSum* sync) {
  if (m <= 0 || c <= 0 || (!dx && !dgamma && !dbeta)) return;
  // Per-channel constants: a, b, d of the dx formula, then invstd (all float, 4c).
  float* coef = scratch<float>(4 * static_cast<size_t>(c), 1);
  float* invstd = coef + 3 * c;
  for (int k = 0; k < c; ++k) {
    const double is = 1.0 / std::sqrt(static_cast<double>(var[k]) + eps);
    invstd[k] = static_cast<float>(is);
    coef[k] = static_cast<float>(is * (gamma ? gamma[k] : 1.0f));
  }
  // Eval-mode statistics: dx = a * dz is complete in the reduction pass; with no parameter
  // gradients wanted the sums are skipped too, but one pass is needed either way.
  const bool dx_in_pass1 = dx && !batch_stats;
  const int parts = parts_for(m, c);
  const int64_t cp = padded(c);
  double* part = scratch<double>(static_cast<size_t>(parts) * 2 * cp, 0);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    double* s = part + p * 2 * cp;
    std::fill(s, s + 2 * cp, 0.0);
    sums_rows(m * p / parts, m * (p + 1) / parts, c, act, x, y, dy, mean, coef, s, s + cp,
              dx_in_pass1 ? dx : nullptr);
  }
  // Per-channel sums of this process's rows, then (synchronized BN) of all processes' rows.
  std::vector<double> sums(2 * static_cast<size_t>(c), 0.0);
  for (int k = 0; k < c; ++k)
    for (int p = 0; p < parts; ++p) {
      sums[size_t(k)] += part[p * 2 * cp + k];
      sums[size_t(c + k)] += part[p * 2 * cp + cp + k];
    }
  for (int k = 0; k < c; ++k) {
    if (dbeta) dbeta[k] += static_cast<float>(sums[size_t(k)]);
    if (dgamma) dgamma[k] += static_cast<float>(sums[size_t(c + k)] * invstd[k]);
  }
  int64_t rows = m;
  if (sync && batch_stats) {
    sync->fn(sums.data(), 2 * int64_t(c), sync->ctx);
    rows = sync->total_m;
  }
  const double inv_m = 1.0 / static_cast<double>(rows);
  for (int k = 0; k < c; ++k) {
    const double sdz = sums[size_t(k)], sdzx = sums[size_t(c + k)];
    const double is = invstd[k], a = coef[k];
    // dx = a * (dz - mean(dz) - xhat * mean(dz * xhat)), xhat = (x - mean) * invstd.
    coef[c + k] = static_cast<float>(a * is * is * sdzx * inv_m);
    coef[2 * c + k] = static_cast<float>(a * sdz * inv_m);
  }
  if (!dx || dx_in_pass1) return;
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    const int64_t r0 = m * p / parts, r1 = m * (p + 1) / parts;
    if (dx == dy)
      dx_rows_inplace(r0, r1, c, act, x, y, dx, mean, coef);
    else
      dx_rows(r0, r1, c, act, x, y, dy, mean, coef, dx);
  }
}

void batchnorm_update_running(int64_t m, int c, const float* mean, const float* var, float momentum,
                              float* running_mean, float* running_var) {
  // PyTorch divides by m - 1 unguarded (and refuses m == 1 in training); the biased variance
  // is used there instead so one bad call cannot poison the running statistics with inf.
  const double unbias = m > 1 ? static_cast<double>(m) / static_cast<double>(m - 1) : 1.0;
  const double mo = momentum;
  for (int k = 0; k < c; ++k) {
    running_mean[k] = static_cast<float>((1.0 - mo) * running_mean[k] + mo * mean[k]);
    running_var[k] = static_cast<float>((1.0 - mo) * running_var[k] + mo * var[k] * unbias);
  }
}

}  // namespace osprey::cpu
