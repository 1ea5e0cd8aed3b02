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

// Per-channel sums are formed in float over blocks of this many rows, then added into double:
// float keeps the inner loop at full vector width, the short block bounds the float rounding
// (about kBlockRows ulps of a block's sum) and double carries the totals over all rows.
constexpr int64_t kBlockRows = 16;

// Grow-only scratch owned by the calling thread (the team writes into it during the call):
// steady-state steps allocate nothing. Aligned to a cache line, so per-part partials padded to
// whole lines never share one. Slot 0: per-part double partials; slot 1: per-channel constants;
// slot 2: per-part float block sums.
template <class T>
T* scratch(size_t n, int slot) {
  thread_local std::vector<T> buf[3];
  const size_t pad = 64 / sizeof(T);
  if (buf[slot].size() < n + pad) buf[slot].resize(n + pad);
  const auto addr = reinterpret_cast<uintptr_t>(buf[slot].data());
  return buf[slot].data() + ((64 - addr % 64) % 64) / sizeof(T);
}

// Per-part partials are padded to whole cache lines (16 floats) so that parts never share one.
int64_t padded(int c) {
  return (static_cast<int64_t>(c) + 15) & ~int64_t{15};
}

// Work is split into one contiguous band of rows per thread ("part"). The split depends only
// on the thread count, so results are reproducible run to run.
int parts_for(int64_t m, int c) {
  return m * c > kParallelMin ? std::max(1, omp_get_max_threads()) : 1;
}

// The pre-activation, one expression for the forward and the backward's mask, so both round
// (and contract to FMA) the same way and the mask matches what the forward clamped.
OSPREY_INLINE float normalized(float centred, float scale, float shift) {
  return centred * scale + shift;
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

// g where the activation passed its pre-activation z through (relu: z > 0; relu6: 0 < z < 6).
template <Activation A>
OSPREY_INLINE float masked(float z, float g) {
  if (A == Activation::relu) return keep_if(z > 0.0f, g);
  if (A == Activation::relu6) return keep_if((z > 0.0f) & (z < 6.0f), g);
  return g;
}

// Adds the float block sums into the double totals and clears them.
OSPREY_INLINE void flush(int c, float* __restrict fa, float* __restrict fb, double* __restrict a,
                         double* __restrict b) {
  for (int k = 0; k < c; ++k) {
    a[k] += fa[k], b[k] += fb[k];
    fa[k] = 0.0f, fb[k] = 0.0f;
  }
}

// Shifting by the first row keeps sum(d^2)/m - mean(d)^2 free of cancellation when
// |mean| >> std.
template <class T>
OSPREY_CLONES void stats_rows(int64_t r0, int64_t r1, int c, const T* __restrict x,
                              const float* __restrict shift, double* __restrict s,
                              double* __restrict q, float* __restrict fs, float* __restrict fq) {
  for (int64_t b = r0; b < r1; b += kBlockRows) {
    const int64_t e = std::min(r1, b + kBlockRows);
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * c;
      for (int k = 0; k < c; ++k) {
        const float d = load_as_float(xr, k) - shift[k];
        fs[k] += d;
        fq[k] += d * d;
      }
    }
    flush(c, fs, fq, s, q);
  }
}

// (x - mean) is formed first so a large mean does not cost precision in x * scale. y may alias
// x (each element is read before it is written), so neither is restrict.
template <class T, Activation A>
OSPREY_INLINE void forward_impl(int64_t r0, int64_t r1, int c, const T* x, const float* mean,
                                const float* scale, const float* shift, T* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * c;
    for (int k = 0; k < c; ++k)
      store_from_float(
          y, o + k, activate<A>(normalized(load_as_float(x, o + k) - mean[k], scale[k], shift[k])));
  }
}

// Out-of-place and in-place variants: restrict lets both vectorise without a runtime overlap
// check (which would send y == x down a scalar path). The same holds for the backward's passes.
template <class T>
OSPREY_CLONES void forward_rows(int64_t r0, int64_t r1, int c, Activation act,
                                const T* __restrict x, const float* __restrict mean,
                                const float* __restrict scale, const float* __restrict shift,
                                T* __restrict y) {
  if (act == Activation::relu)
    return forward_impl<T, Activation::relu>(r0, r1, c, x, mean, scale, shift, y);
  if (act == Activation::relu6)
    return forward_impl<T, Activation::relu6>(r0, r1, c, x, mean, scale, shift, y);
  forward_impl<T, Activation::none>(r0, r1, c, x, mean, scale, shift, y);
}

template <class T>
OSPREY_CLONES void forward_rows_inplace(int64_t r0, int64_t r1, int c, Activation act,
                                        T* __restrict y, const float* __restrict mean,
                                        const float* __restrict scale,
                                        const float* __restrict shift) {
  if (act == Activation::relu)
    return forward_impl<T, Activation::relu>(r0, r1, c, y, mean, scale, shift, y);
  if (act == Activation::relu6)
    return forward_impl<T, Activation::relu6>(r0, r1, c, y, mean, scale, shift, y);
  forward_impl<T, Activation::none>(r0, r1, c, y, mean, scale, shift, y);
}

// The per-channel constants of the backward, 5c floats: a = invstd * gamma (the forward's
// scale), b and d of the dx formula, invstd, and the shift (beta, or 0).
struct Coefficients {
  float *a, *b, *d, *invstd, *shift;
};

// The reduction pass of the backward: per channel sum(dz) and sum(dz * (x - mean)), dz = dy *
// mask, the mask recomputed from x. With eval-mode statistics dx = a * dz needs nothing else,
// so it is written in the same pass (kWriteDx). dx may alias dy: each element is read before it
// is written.
template <class T, Activation A, bool kWriteDx>
OSPREY_INLINE void sums_impl(int64_t r0, int64_t r1, int c, const T* __restrict x, const T* dy,
                             const float* __restrict mean, const Coefficients& k_,
                             double* __restrict sdz, double* __restrict sdzx, float* __restrict fz,
                             float* __restrict fzx, T* dx) {
  const float* __restrict a = k_.a;
  const float* __restrict shift = k_.shift;
  for (int64_t b = r0; b < r1; b += kBlockRows) {
    const int64_t e = std::min(r1, b + kBlockRows);
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r * c;
      for (int k = 0; k < c; ++k) {
        const float xm = load_as_float(x, o + k) - mean[k];
        const float dz = masked<A>(normalized(xm, a[k], shift[k]), load_as_float(dy, o + k));
        fz[k] += dz;
        fzx[k] += dz * xm;
        if (kWriteDx) store_from_float(dx, o + k, a[k] * dz);
      }
    }
    flush(c, fz, fzx, sdz, sdzx);
  }
}

template <class T, bool kWriteDx>
OSPREY_INLINE void sums_dispatch(int64_t r0, int64_t r1, int c, Activation act, const T* x,
                                 const T* dy, const float* mean, const Coefficients& k_,
                                 double* sdz, double* sdzx, float* fz, float* fzx, T* dx) {
  if (act == Activation::relu)
    return sums_impl<T, Activation::relu, kWriteDx>(r0, r1, c, x, dy, mean, k_, sdz, sdzx, fz, fzx,
                                                    dx);
  if (act == Activation::relu6)
    return sums_impl<T, Activation::relu6, kWriteDx>(r0, r1, c, x, dy, mean, k_, sdz, sdzx, fz, fzx,
                                                     dx);
  sums_impl<T, Activation::none, kWriteDx>(r0, r1, c, x, dy, mean, k_, sdz, sdzx, fz, fzx, dx);
}

template <class T>
OSPREY_CLONES void sums_rows(int64_t r0, int64_t r1, int c, Activation act, const T* __restrict x,
                             const T* __restrict dy, const float* __restrict mean, Coefficients k_,
                             double* sdz, double* sdzx, float* fz, float* fzx) {
  sums_dispatch<T, false>(r0, r1, c, act, x, dy, mean, k_, sdz, sdzx, fz, fzx, nullptr);
}

// Eval-mode statistics: dx written in the same pass, out of place or over dy.
template <class T>
OSPREY_CLONES void sums_dx_rows(int64_t r0, int64_t r1, int c, Activation act,
                                const T* __restrict x, const T* __restrict dy,
                                const float* __restrict mean, Coefficients k_, double* sdz,
                                double* sdzx, float* fz, float* fzx, T* __restrict dx) {
  sums_dispatch<T, true>(r0, r1, c, act, x, dy, mean, k_, sdz, sdzx, fz, fzx, dx);
}

template <class T>
OSPREY_CLONES void sums_dx_rows_inplace(int64_t r0, int64_t r1, int c, Activation act,
                                        const T* __restrict x, T* __restrict g,
                                        const float* __restrict mean, Coefficients k_, double* sdz,
                                        double* sdzx, float* fz, float* fzx) {
  sums_dispatch<T, true>(r0, r1, c, act, x, g, mean, k_, sdz, sdzx, fz, fzx, g);
}

// The elementwise pass of the training-mode backward, with the per-channel constants folded:
// dx = a * dz - b * (x - mean) - d. dx may alias dy.
template <class T, Activation A>
OSPREY_INLINE void dx_impl(int64_t r0, int64_t r1, int c, const T* __restrict x, const T* dy,
                           const float* __restrict mean, const Coefficients& k_, T* dx) {
  const float* __restrict a = k_.a, * __restrict b = k_.b, * __restrict d = k_.d;
  const float* __restrict shift = k_.shift;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * c;
    for (int k = 0; k < c; ++k) {
      const float xm = load_as_float(x, o + k) - mean[k];
      const float dz = masked<A>(normalized(xm, a[k], shift[k]), load_as_float(dy, o + k));
      store_from_float(dx, o + k, a[k] * dz - b[k] * xm - d[k]);
    }
  }
}

template <class T>
OSPREY_CLONES void dx_rows(int64_t r0, int64_t r1, int c, Activation act, const T* __restrict x,
                           const T* __restrict dy, const float* __restrict mean, Coefficients k_,
                           T* __restrict dx) {
  if (act == Activation::relu) return dx_impl<T, Activation::relu>(r0, r1, c, x, dy, mean, k_, dx);
  if (act == Activation::relu6)
    return dx_impl<T, Activation::relu6>(r0, r1, c, x, dy, mean, k_, dx);
  dx_impl<T, Activation::none>(r0, r1, c, x, dy, mean, k_, dx);
}

// dx == dy (gradient computed in place).
template <class T>
OSPREY_CLONES void dx_rows_inplace(int64_t r0, int64_t r1, int c, Activation act,
                                   const T* __restrict x, T* __restrict g,
                                   const float* __restrict mean, Coefficients k_) {
  if (act == Activation::relu) return dx_impl<T, Activation::relu>(r0, r1, c, x, g, mean, k_, g);
  if (act == Activation::relu6) return dx_impl<T, Activation::relu6>(r0, r1, c, x, g, mean, k_, g);
  dx_impl<T, Activation::none>(r0, r1, c, x, g, mean, k_, g);
}

template <class T>
void stats(int64_t m, int c, const T* x, float* mean, float* var) {
  if (c <= 0) return;
  if (m <= 0) {  // an empty batch has no statistics; zeros keep the caller's buffers finite
    std::fill(mean, mean + c, 0.0f);
    std::fill(var, var + c, 0.0f);
    return;
  }
  const int parts = parts_for(m, c);
  const int64_t cp = padded(c);
  double* part = scratch<double>(static_cast<size_t>(parts) * 2 * cp, 0);
  float* block = scratch<float>(static_cast<size_t>(parts) * 2 * cp, 2);
  float* shift = scratch<float>(static_cast<size_t>(c), 1);
  for (int k = 0; k < c; ++k) shift[k] = load_as_float(x, k);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    double* s = part + p * 2 * cp;
    float* f = block + p * 2 * cp;
    std::fill(s, s + 2 * cp, 0.0);
    std::fill(f, f + 2 * cp, 0.0f);
    stats_rows(m * p / parts, m * (p + 1) / parts, c, x, shift, s, s + cp, f, f + cp);
  }
  for (int k = 0; k < c; ++k) {
    double s = 0.0, q = 0.0;
    for (int p = 0; p < parts; ++p) s += part[p * 2 * cp + k], q += part[p * 2 * cp + cp + k];
    const double mu = s / static_cast<double>(m);
    mean[k] = static_cast<float>(static_cast<double>(shift[k]) + mu);
    var[k] = static_cast<float>(std::max(q / static_cast<double>(m) - mu * mu, 0.0));
  }
}

// scale and shift of the forward (and the backward's mask): invstd * gamma, and beta.
void affine(int c, const float* var, const float* gamma, const float* beta, float eps,
            float* invstd, float* scale, float* shift) {
  for (int k = 0; k < c; ++k) {
    const double is = 1.0 / std::sqrt(static_cast<double>(var[k]) + eps);
    if (invstd) invstd[k] = static_cast<float>(is);
    scale[k] = static_cast<float>(is * (gamma ? gamma[k] : 1.0f));
    shift[k] = beta ? beta[k] : 0.0f;
  }
}

template <class T>
void forward(int64_t m, int c, const T* x, const float* mean, const float* var, const float* gamma,
             const float* beta, float eps, Activation act, T* y) {
  if (m <= 0 || c <= 0) return;
  float* scale = scratch<float>(2 * static_cast<size_t>(c), 1);
  float* shift = scale + c;
  affine(c, var, gamma, beta, eps, nullptr, scale, shift);
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

// The backward's per-channel constants (invstd, a = invstd * gamma, the mask's shift) in k_.
Coefficients coefficients(int c, const float* var, const float* gamma, const float* beta,
                          float eps) {
  float* base = scratch<float>(5 * static_cast<size_t>(c), 1);
  const Coefficients k_{base, base + c, base + 2 * c, base + 3 * c, base + 4 * c};
  affine(c, var, gamma, beta, eps, k_.invstd, k_.a, k_.shift);
  return k_;
}

// The reduction pass: this process's per-channel sums [sum dz][sum dz * (x - mean)] into sums
// (2c), dgamma and dbeta accumulated from them; with dx_in_pass (eval-mode statistics) also
// dx = a * dz, which is then complete.
template <class T>
void reduce_pass(int64_t m, int c, const T* x, const T* dy, const float* mean, Activation act,
                 const Coefficients& k_, bool dx_in_pass, T* dx, double* sums, float* dgamma,
                 float* dbeta) {
  const int parts = parts_for(m, c);
  const int64_t cp = padded(c);
  double* part = scratch<double>(static_cast<size_t>(parts) * 2 * cp, 0);
  float* block = scratch<float>(static_cast<size_t>(parts) * 2 * cp, 2);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    double* s = part + p * 2 * cp;
    float* f = block + p * 2 * cp;
    std::fill(s, s + 2 * cp, 0.0);
    std::fill(f, f + 2 * cp, 0.0f);
    const int64_t r0 = m * p / parts, r1 = m * (p + 1) / parts;
    if (!dx_in_pass)
      sums_rows(r0, r1, c, act, x, dy, mean, k_, s, s + cp, f, f + cp);
    else if (dx == dy)
      sums_dx_rows_inplace(r0, r1, c, act, x, dx, mean, k_, s, s + cp, f, f + cp);
    else
      sums_dx_rows(r0, r1, c, act, x, dy, mean, k_, s, s + cp, f, f + cp, dx);
  }
  std::fill(sums, sums + 2 * c, 0.0);
  for (int k = 0; k < c; ++k)
    for (int p = 0; p < parts; ++p) {
      sums[k] += part[p * 2 * cp + k];
      sums[c + k] += part[p * 2 * cp + cp + k];
    }
  for (int k = 0; k < c; ++k) {
    if (dbeta) dbeta[k] += static_cast<float>(sums[k]);
    if (dgamma) dgamma[k] += static_cast<float>(sums[c + k] * k_.invstd[k]);
  }
}

// The second pass of the batch-statistics backward, from the sums over all `rows` rows behind
// the statistics (this process's, or every process's with synchronized BatchNorm).
template <class T>
void dx_pass(int64_t m, int c, const T* x, const T* dy, const float* mean, Activation act,
             const Coefficients& k_, const double* sums, int64_t rows, T* dx) {
  const double inv_m = 1.0 / static_cast<double>(rows);
  for (int k = 0; k < c; ++k) {
    const double sdz = sums[k], sdzx = sums[c + k];
    const double is = k_.invstd[k], a = k_.a[k];
    // dx = a * (dz - mean(dz) - xhat * mean(dz * xhat)), xhat = (x - mean) * invstd.
    k_.b[k] = static_cast<float>(a * is * is * sdzx * inv_m);
    k_.d[k] = static_cast<float>(a * sdz * inv_m);
  }
  const int parts = parts_for(m, c);
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    const int64_t r0 = m * p / parts, r1 = m * (p + 1) / parts;
    if (dx == dy)
      dx_rows_inplace(r0, r1, c, act, x, dx, mean, k_);
    else
      dx_rows(r0, r1, c, act, x, dy, mean, k_, dx);
  }
}

template <class T>
void backward(int64_t m, int c, const T* x, const T* dy, const float* mean, const float* var,
              const float* gamma, const float* beta, float eps, Activation act, bool batch_stats,
              T* dx, float* dgamma, float* dbeta) {
  if (m <= 0 || c <= 0 || (!dx && !dgamma && !dbeta)) return;
  const Coefficients k_ = coefficients(c, var, gamma, beta, eps);
  // Eval-mode statistics: dx = a * dz is complete in the reduction pass; with no parameter
  // gradients wanted the sums are skipped too, but one pass is needed either way.
  const bool dx_in_pass = dx && !batch_stats;
  std::vector<double> sums(2 * static_cast<size_t>(c));
  reduce_pass(m, c, x, dy, mean, act, k_, dx_in_pass, dx, sums.data(), dgamma, dbeta);
  if (dx && !dx_in_pass) dx_pass(m, c, x, dy, mean, act, k_, sums.data(), m, dx);
}

}  // namespace

void batchnorm_stats(int64_t m, int c, const float* x, float* mean, float* var) {
  stats(m, c, x, mean, var);
}

void batchnorm_stats(int64_t m, int c, const bf16* x, float* mean, float* var) {
  stats(m, c, x, mean, var);
}

void batchnorm_act_forward(int64_t m, int c, const float* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           float* y) {
  forward(m, c, x, mean, var, gamma, beta, eps, act, y);
}

void batchnorm_act_forward(int64_t m, int c, const bf16* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           bf16* y) {
  forward(m, c, x, mean, var, gamma, beta, eps, act, y);
}

void batchnorm_act_backward(int64_t m, int c, const float* x, const float* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, float* dx, float* dgamma,
                            float* dbeta) {
  backward(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta);
}

void batchnorm_act_backward_sums(int64_t m, int c, const float* x, const float* dy,
                                 const float* mean, const float* var, const float* gamma,
                                 const float* beta, float eps, Activation act, double* sums,
                                 float* dgamma, float* dbeta) {
  if (c <= 0) return;
  if (m <= 0) return std::fill(sums, sums + 2 * c, 0.0);
  const Coefficients k_ = coefficients(c, var, gamma, beta, eps);
  reduce_pass(m, c, x, dy, mean, act, k_, false, static_cast<float*>(nullptr), sums, dgamma, dbeta);
}

void batchnorm_act_backward_dx(int64_t m, int c, const float* x, const float* dy, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps,
                               Activation act, const double* sums, int64_t total_m, float* dx) {
  if (m <= 0 || c <= 0) return;
  const Coefficients k_ = coefficients(c, var, gamma, beta, eps);
  dx_pass(m, c, x, dy, mean, act, k_, sums, total_m, dx);
}

void batchnorm_act_backward(int64_t m, int c, const bf16* x, const bf16* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, bf16* dx, float* dgamma,
                            float* dbeta) {
  backward(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta);
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
