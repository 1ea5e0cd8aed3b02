#include <cstdint>
#include <type_traits>

#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/stream_buffer.cuh"
#include "kernels/cuda/vec.cuh"

namespace osprey::cuda {
namespace {

using i64 = int64_t;

constexpr int kThreads = 256;

// Every kernel here uses the same 2-D layout over x [m][c]: threadIdx.x / blockIdx.y pick a
// group of V channels (V = 4: one 128-bit access), threadIdx.y / blockIdx.x stride over the
// rows. A thread keeps its channels for the whole loop, so the per-channel constants sit in
// registers and the partial sums need no atomics: per-block partials, then one fixed-order pass.
struct Layout {
  int bx, by, gx, gy;
};

Layout layout_for(i64 m, int c, int v) {
  const int cg = c / v;
  Layout l;
  l.bx = cg < 32 ? cg : 32;
  l.by = kThreads / l.bx;
  l.gy = (cg + l.bx - 1) / l.bx;
  // A few rows per thread at least; about 8 blocks per SM of an H100 in all.
  i64 gx = (m + i64{l.by} * 8 - 1) / (i64{l.by} * 8);
  const i64 cap = 1056 / l.gy > 0 ? 1056 / l.gy : 1;
  l.gx = int(gx < 1 ? 1 : gx > cap ? cap : gx);
  return l;
}

// Plain (coherent) loads throughout: y may alias x and dx may alias dy, each element read then
// written by the same thread.
using vec::load;
using vec::store;
using vec::Vec;

// "v < 0 ? 0 : v" lets NaN through, as the CPU op and PyTorch do.
template <Activation A>
__device__ __forceinline__ float activate(float v) {
  if (A == Activation::relu) return v < 0.0f ? 0.0f : v;
  if (A == Activation::relu6) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

// The value the activation is applied to, written once so the forward and the backward's mask
// round it the same way.
__device__ __forceinline__ float pre_activation(float x, float mean, float scale, float shift) {
  return (x - mean) * scale + shift;
}

template <Activation A>
__device__ __forceinline__ float masked(float y, float g) {
  if (A == Activation::relu) return y > 0.0f ? g : 0.0f;
  if (A == Activation::relu6) return y > 0.0f && y < 6.0f ? g : 0.0f;
  return g;
}

// Sums NV doubles per thread over threadIdx.y in a fixed order and writes them to
// part[blockIdx.x][q][c] (q < NV / V, channels c0..c0+V). red holds blockDim.x*y*NV doubles.
template <int V, int NQ>
__device__ void block_partials(double (&v)[NQ][V], double* red, int c, int c0, bool active,
                               double* part) {
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x, by = blockDim.y;
  constexpr int kN = NQ * V;
  double* mine = red + (ty * bx + tx) * kN;
#pragma unroll
  for (int q = 0; q < NQ; ++q)
#pragma unroll
    for (int k = 0; k < V; ++k) mine[q * V + k] = v[q][k];
  __syncthreads();
  int half = 1;
  while (half * 2 < by) half *= 2;
  for (; half > 0; half /= 2) {
    if (ty < half && ty + half < by) {
      const double* other = red + ((ty + half) * bx + tx) * kN;
#pragma unroll
      for (int k = 0; k < kN; ++k) mine[k] += other[k];
    }
    __syncthreads();
  }
  if (ty != 0 || !active) return;
#pragma unroll
  for (int q = 0; q < NQ; ++q)
#pragma unroll
    for (int k = 0; k < V; ++k) part[(i64{blockIdx.x} * NQ + q) * c + c0 + k] = mine[q * V + k];
}

// Statistics relative to the first row: sum(d^2)/m - mean(d)^2 then does not cancel when
// |mean| >> std (the CPU op does the same).
// T (float or bf16) is the activations' storage type throughout; arithmetic is float/double.
template <int V, typename T>
__global__ void __launch_bounds__(kThreads)
    stats_kernel(i64 m, int c, const T* __restrict__ x, double* __restrict__ part) {
  extern __shared__ double red[];
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  const bool active = c0 < c;
  double acc[2][V] = {};
  if (active) {
    const Vec<V> shift = load<V>(x + c0);
    for (i64 r = blockIdx.x * i64{blockDim.y} + threadIdx.y; r < m;
         r += i64{gridDim.x} * blockDim.y) {
      const Vec<V> xv = load<V>(x + r * c + c0);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const double d = double(xv.v[k]) - double(shift.v[k]);
        acc[0][k] += d;
        acc[1][k] = fma(d, d, acc[1][k]);
      }
    }
  }
  block_partials<V, 2>(acc, red, c, c0, active, part);
}

// Second stage of the [s][q] per-channel partials part[g][2][c] (g < parts), blocks of 32
// channels x 8 partial strides: the totals of channel k in a fixed order. True in the one thread
// per channel that holds them (threadIdx.y == 0); every thread must call it.
__device__ bool sum_partial_pairs(int c, int parts, const double* __restrict__ part, int k,
                                  double& s, double& q) {
  __shared__ double red[2][8][32];
  s = 0.0, q = 0.0;
  if (k < c)
    for (int g = threadIdx.y; g < parts; g += 8) {
      s += part[(i64{g} * 2) * c + k];
      q += part[(i64{g} * 2 + 1) * c + k];
    }
  red[0][threadIdx.y][threadIdx.x] = s;
  red[1][threadIdx.y][threadIdx.x] = q;
  __syncthreads();
  if (threadIdx.y != 0 || k >= c) return false;
  s = q = 0.0;
  for (int j = 0; j < 8; ++j) s += red[0][j][threadIdx.x], q += red[1][j][threadIdx.x];
  return true;
}

template <typename T>
__global__ void stats_finish_kernel(i64 m, int c, int parts, const T* __restrict__ x,
                                    const double* __restrict__ part, float* __restrict__ mean,
                                    float* __restrict__ var) {
  const int k = blockIdx.x * 32 + threadIdx.x;
  double s, q;
  if (!sum_partial_pairs(c, parts, part, k, s, q)) return;
  const double mu = s / double(m);
  mean[k] = float(double(vec::load1(x + k)) + mu);
  var[k] = float(fmax(q / double(m) - mu * mu, 0.0));
}

// Per-channel scale, computed the CPU op's way (double invstd times gamma, rounded once).
__device__ __forceinline__ float scale_of(const float* var, const float* gamma, int k, float eps) {
  const double invstd = 1.0 / sqrt(double(var[k]) + double(eps));
  return float(invstd * (gamma ? gamma[k] : 1.0f));
}

// A thread's V channels' mean, scale and shift (the forward's pre-activation constants, which
// the backward's mask and dx reuse).
template <int V>
struct ChannelAffine {
  float mu[V], scale[V], shift[V];
};

template <int V>
__device__ __forceinline__ ChannelAffine<V> channel_affine(int c0, const float* mean,
                                                           const float* var, const float* gamma,
                                                           const float* beta, float eps) {
  ChannelAffine<V> f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    f.mu[k] = mean[c0 + k];
    f.scale[k] = scale_of(var, gamma, c0 + k, eps);
    f.shift[k] = beta ? beta[c0 + k] : 0.0f;
  }
  return f;
}

template <int V, Activation A, typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(i64 m, int c, const T* x, const float* __restrict__ mean,
                   const float* __restrict__ var, const float* __restrict__ gamma,
                   const float* __restrict__ beta, float eps, T* y) {
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  if (c0 >= c) return;
  const ChannelAffine<V> f = channel_affine<V>(c0, mean, var, gamma, beta, eps);
  for (i64 r = blockIdx.x * i64{blockDim.y} + threadIdx.y; r < m;
       r += i64{gridDim.x} * blockDim.y) {
    Vec<V> v = load<V>(x + r * c + c0);
#pragma unroll
    for (int k = 0; k < V; ++k)
      v.v[k] = activate<A>(pre_activation(v.v[k], f.mu[k], f.scale[k], f.shift[k]));
    store(y + r * c + c0, v);
  }
}

// Backward reduction pass: per channel sum(dz) and sum(dz * (x - mean)), dz = dy * mask. With
// eval-mode statistics dx = a * dz is complete here (kWriteDx), so there is no second pass.
template <int V, Activation A, bool kWriteDx, typename T>
__global__ void __launch_bounds__(kThreads)
    sums_kernel(i64 m, int c, const T* __restrict__ x, const T* dy, const float* __restrict__ mean,
                const float* __restrict__ var, const float* __restrict__ gamma,
                const float* __restrict__ beta, float eps, T* dx, double* __restrict__ part) {
  extern __shared__ double red[];
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  const bool active = c0 < c;
  double acc[2][V] = {};
  if (active) {
    const ChannelAffine<V> f = channel_affine<V>(c0, mean, var, gamma, beta, eps);
    for (i64 r = blockIdx.x * i64{blockDim.y} + threadIdx.y; r < m;
         r += i64{gridDim.x} * blockDim.y) {
      const i64 o = r * c + c0;
      const Vec<V> g = load<V>(dy + o), xv = load<V>(x + o);
      Vec<V> out;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float dz =
            masked<A>(pre_activation(xv.v[k], f.mu[k], f.scale[k], f.shift[k]), g.v[k]);
        acc[0][k] += dz;
        acc[1][k] = fma(double(dz), double(xv.v[k] - f.mu[k]), acc[1][k]);
        out.v[k] = f.scale[k] * dz;
      }
      if (kWriteDx) store(dx + o, out);
    }
  }
  if (part) block_partials<V, 2>(acc, red, c, c0, active, part);
}

// dx = a * dz - b * (x - mean) - d: coef = [b][d] from the per-channel sums s = sum(dz) and
// q = sum(dz * (x - mean)) over m rows.
__device__ __forceinline__ void dx_coefficients(int k, int c, double s, double q, i64 m,
                                                const float* var, const float* gamma, float eps,
                                                float* coef) {
  const double is_d = 1.0 / sqrt(double(var[k]) + double(eps));
  const float is = float(is_d), a = float(is_d * (gamma ? gamma[k] : 1.0f));
  const double inv_m = 1.0 / double(m);
  coef[k] = float(double(a) * double(is) * double(is) * q * inv_m);
  coef[c + k] = float(double(a) * s * inv_m);
}

// Sums the partials per channel, accumulates dgamma/dbeta and, for the training-mode dx pass,
// folds the constants (coef, when not null); sums_out (when not null) receives [s][q] for a
// cross-process sum before the dx pass.
__global__ void sums_finish_kernel(i64 m, int c, int parts, const double* __restrict__ part,
                                   const float* __restrict__ var, const float* __restrict__ gamma,
                                   float eps, float* dgamma, float* dbeta, float* __restrict__ coef,
                                   double* __restrict__ sums_out) {
  const int k = blockIdx.x * 32 + threadIdx.x;
  double s, q;
  if (!sum_partial_pairs(c, parts, part, k, s, q)) return;
  const float is = float(1.0 / sqrt(double(var[k]) + double(eps)));
  if (dbeta) dbeta[k] += float(s);
  if (dgamma) dgamma[k] += float(q * double(is));
  if (coef) dx_coefficients(k, c, s, q, m, var, gamma, eps, coef);
  if (sums_out) sums_out[k] = s, sums_out[c + k] = q;
}

// coef from sums [s][q] over total_m rows (all processes' rows of a synchronized BatchNorm).
__global__ void coefficients_kernel(i64 total_m, int c, const double* __restrict__ sums,
                                    const float* __restrict__ var, const float* __restrict__ gamma,
                                    float eps, float* __restrict__ coef) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < c) dx_coefficients(k, c, sums[k], sums[c + k], total_m, var, gamma, eps, coef);
}

template <int V, Activation A, typename T>
__global__ void __launch_bounds__(kThreads)
    dx_kernel(i64 m, int c, const T* __restrict__ x, const T* dy, const float* __restrict__ mean,
              const float* __restrict__ var, const float* __restrict__ gamma,
              const float* __restrict__ beta, float eps, const float* __restrict__ coef, T* dx) {
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  if (c0 >= c) return;
  const ChannelAffine<V> f = channel_affine<V>(c0, mean, var, gamma, beta, eps);
  float b[V], d[V];
#pragma unroll
  for (int k = 0; k < V; ++k) {
    b[k] = coef[c0 + k];
    d[k] = coef[c + c0 + k];
  }
  for (i64 r = blockIdx.x * i64{blockDim.y} + threadIdx.y; r < m;
       r += i64{gridDim.x} * blockDim.y) {
    const i64 o = r * c + c0;
    const Vec<V> g = load<V>(dy + o), xv = load<V>(x + o);
    Vec<V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float dz = masked<A>(pre_activation(xv.v[k], f.mu[k], f.scale[k], f.shift[k]), g.v[k]);
      out.v[k] = f.scale[k] * dz - b[k] * (xv.v[k] - f.mu[k]) - d[k];
    }
    store(dx + o, out);
  }
}

__global__ void update_running_kernel(int c, const float* __restrict__ mean,
                                      const float* __restrict__ var, double momentum, double unbias,
                                      float* __restrict__ running_mean,
                                      float* __restrict__ running_var) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= c) return;
  running_mean[k] = float((1.0 - momentum) * running_mean[k] + momentum * mean[k]);
  running_var[k] = float((1.0 - momentum) * running_var[k] + momentum * var[k] * unbias);
}

// Runs body(std::integral_constant<Activation, A>) for the runtime activation.
template <class F>
void with_act(Activation act, F&& body) {
  if (act == Activation::relu)
    body(std::integral_constant<Activation, Activation::relu>());
  else if (act == Activation::relu6)
    body(std::integral_constant<Activation, Activation::relu6>());
  else
    body(std::integral_constant<Activation, Activation::none>());
}

template <int V, typename T>
void stats_impl(i64 m, int c, const T* x, float* mean, float* var, cudaStream_t stream) {
  const Layout l = layout_for(m, c, V);
  const StreamBuffer<double> part_buffer(int64_t(2) * c * l.gx, stream);
  double* part = part_buffer.get();
  const size_t smem = sizeof(double) * 2 * V * kThreads;
  stats_kernel<V, T><<<dim3(l.gx, l.gy), dim3(l.bx, l.by), smem, stream>>>(m, c, x, part);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  stats_finish_kernel<<<(c + 31) / 32, dim3(32, 8), 0, stream>>>(m, c, l.gx, x, part, mean, var);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <int V, typename T>
void forward_impl(i64 m, int c, const T* x, const float* mean, const float* var, const float* gamma,
                  const float* beta, float eps, Activation act, T* y, cudaStream_t stream) {
  const Layout l = layout_for(m, c, V);
  with_act(act, [&](auto a) {
    forward_kernel<V, decltype(a)::value, T><<<dim3(l.gx, l.gy), dim3(l.bx, l.by), 0, stream>>>(
        m, c, x, mean, var, gamma, beta, eps, y);
  });
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <int V, typename T>
void backward_impl(i64 m, int c, const T* x, const T* dy, const float* mean, const float* var,
                   const float* gamma, const float* beta, float eps, Activation act,
                   bool batch_stats, T* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  const Layout l = layout_for(m, c, V);
  const dim3 grid(l.gx, l.gy), block(l.bx, l.by);
  const bool dx_in_pass1 = dx && !batch_stats;
  const bool need_sums = dgamma || dbeta || (dx && batch_stats);
  StreamBuffer<double> part_buffer;
  StreamBuffer<float> coef_buffer;
  if (need_sums) part_buffer = StreamBuffer<double>(int64_t(2) * c * l.gx, stream);
  if (dx && batch_stats) coef_buffer = StreamBuffer<float>(int64_t(2) * c, stream);
  double* part = part_buffer.get();
  float* coef = coef_buffer.get();
  const size_t smem = need_sums ? sizeof(double) * 2 * V * kThreads : 0;
  with_act(act, [&](auto a) {
    constexpr Activation A = decltype(a)::value;
    if (dx_in_pass1)
      sums_kernel<V, A, true, T>
          <<<grid, block, smem, stream>>>(m, c, x, dy, mean, var, gamma, beta, eps, dx, part);
    else
      sums_kernel<V, A, false, T><<<grid, block, smem, stream>>>(
          m, c, x, dy, mean, var, gamma, beta, eps, static_cast<T*>(nullptr), part);
  });
  OSPREY_CUDA_CHECK(cudaGetLastError());
  if (need_sums) {
    sums_finish_kernel<<<(c + 31) / 32, dim3(32, 8), 0, stream>>>(m, c, l.gx, part, var, gamma, eps,
                                                                  dgamma, dbeta, coef, nullptr);
    OSPREY_CUDA_CHECK(cudaGetLastError());
  }
  if (coef) {
    with_act(act, [&](auto a) {
      dx_kernel<V, decltype(a)::value, T>
          <<<grid, block, 0, stream>>>(m, c, x, dy, mean, var, gamma, beta, eps, coef, dx);
    });
    OSPREY_CUDA_CHECK(cudaGetLastError());
  }
}

// Synchronized BatchNorm's backward, first half: this process's sums and parameter gradients.
template <int V>
void backward_sums_impl(i64 m, int c, const float* x, const float* dy, const float* mean,
                        const float* var, const float* gamma, const float* beta, float eps,
                        Activation act, double* sums, float* dgamma, float* dbeta,
                        cudaStream_t stream) {
  const Layout l = layout_for(m, c, V);
  const StreamBuffer<double> part_buffer(int64_t(2) * c * l.gx, stream);
  double* part = part_buffer.get();
  const size_t smem = sizeof(double) * 2 * V * kThreads;
  with_act(act, [&](auto a) {
    sums_kernel<V, decltype(a)::value, false, float>
        <<<dim3(l.gx, l.gy), dim3(l.bx, l.by), smem, stream>>>(
            m, c, x, dy, mean, var, gamma, beta, eps, static_cast<float*>(nullptr), part);
  });
  OSPREY_CUDA_CHECK(cudaGetLastError());
  sums_finish_kernel<<<(c + 31) / 32, dim3(32, 8), 0, stream>>>(m, c, l.gx, part, var, gamma, eps,
                                                                dgamma, dbeta, nullptr, sums);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

// Second half: dx from every process's sums (total_m rows).
template <int V>
void backward_dx_impl(i64 m, int c, const float* x, const float* dy, const float* mean,
                      const float* var, const float* gamma, const float* beta, float eps,
                      Activation act, const double* sums, i64 total_m, float* dx,
                      cudaStream_t stream) {
  const Layout l = layout_for(m, c, V);
  const StreamBuffer<float> coef_buffer(int64_t(2) * c, stream);
  float* coef = coef_buffer.get();
  coefficients_kernel<<<(c + 255) / 256, 256, 0, stream>>>(total_m, c, sums, var, gamma, eps, coef);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  with_act(act, [&](auto a) {
    dx_kernel<V, decltype(a)::value, float><<<dim3(l.gx, l.gy), dim3(l.bx, l.by), 0, stream>>>(
        m, c, x, dy, mean, var, gamma, beta, eps, coef, dx);
  });
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void stats_any(int64_t m, int c, const T* x, float* mean, float* var, cudaStream_t stream) {
  if (c <= 0) return;
  if (m <= 0) {  // no statistics; zeros keep the caller's buffers finite, as on the CPU
    OSPREY_CUDA_CHECK(cudaMemsetAsync(mean, 0, sizeof(float) * c, stream));
    OSPREY_CUDA_CHECK(cudaMemsetAsync(var, 0, sizeof(float) * c, stream));
    return;
  }
  if (c % 4 == 0 && vec::aligned4(x))
    stats_impl<4>(m, c, x, mean, var, stream);
  else
    stats_impl<1>(m, c, x, mean, var, stream);
}

template <typename T>
void forward_any(int64_t m, int c, const T* x, const float* mean, const float* var,
                 const float* gamma, const float* beta, float eps, Activation act, T* y,
                 cudaStream_t stream) {
  if (m <= 0 || c <= 0) return;
  if (c % 4 == 0 && vec::aligned4(x) && vec::aligned4(y))
    forward_impl<4>(m, c, x, mean, var, gamma, beta, eps, act, y, stream);
  else
    forward_impl<1>(m, c, x, mean, var, gamma, beta, eps, act, y, stream);
}

template <typename T>
void backward_any(int64_t m, int c, const T* x, const T* dy, const float* mean, const float* var,
                  const float* gamma, const float* beta, float eps, Activation act,
                  bool batch_stats, T* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  if (m <= 0 || c <= 0 || (!dx && !dgamma && !dbeta)) return;
  if (c % 4 == 0 && vec::aligned4(x) && vec::aligned4(dy) && (!dx || vec::aligned4(dx)))
    backward_impl<4>(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta,
                     stream);
  else
    backward_impl<1>(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta,
                     stream);
}

}  // namespace

void batchnorm_stats(int64_t m, int c, const float* x, float* mean, float* var,
                     cudaStream_t stream) {
  stats_any(m, c, x, mean, var, stream);
}

void batchnorm_stats(int64_t m, int c, const bf16* x, float* mean, float* var,
                     cudaStream_t stream) {
  stats_any(m, c, x, mean, var, stream);
}

void batchnorm_act_forward(int64_t m, int c, const float* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           float* y, cudaStream_t stream) {
  forward_any(m, c, x, mean, var, gamma, beta, eps, act, y, stream);
}

void batchnorm_act_forward(int64_t m, int c, const bf16* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           bf16* y, cudaStream_t stream) {
  forward_any(m, c, x, mean, var, gamma, beta, eps, act, y, stream);
}

void batchnorm_act_backward(int64_t m, int c, const float* x, const float* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, float* dx, float* dgamma,
                            float* dbeta, cudaStream_t stream) {
  backward_any(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta,
               stream);
}

void batchnorm_act_backward(int64_t m, int c, const bf16* x, const bf16* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, bf16* dx, float* dgamma, float* dbeta,
                            cudaStream_t stream) {
  backward_any(m, c, x, dy, mean, var, gamma, beta, eps, act, batch_stats, dx, dgamma, dbeta,
               stream);
}

void batchnorm_act_backward_sums(int64_t m, int c, const float* x, const float* dy,
                                 const float* mean, const float* var, const float* gamma,
                                 const float* beta, float eps, Activation act, double* sums,
                                 float* dgamma, float* dbeta, cudaStream_t stream) {
  if (c <= 0) return;
  if (m <= 0) {
    OSPREY_CUDA_CHECK(cudaMemsetAsync(sums, 0, sizeof(double) * 2 * c, stream));
    return;
  }
  if (c % 4 == 0 && vec::aligned4(x) && vec::aligned4(dy))
    backward_sums_impl<4>(m, c, x, dy, mean, var, gamma, beta, eps, act, sums, dgamma, dbeta,
                          stream);
  else
    backward_sums_impl<1>(m, c, x, dy, mean, var, gamma, beta, eps, act, sums, dgamma, dbeta,
                          stream);
}

void batchnorm_act_backward_dx(int64_t m, int c, const float* x, const float* dy, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps,
                               Activation act, const double* sums, int64_t total_m, float* dx,
                               cudaStream_t stream) {
  if (m <= 0 || c <= 0 || !dx) return;
  if (c % 4 == 0 && vec::aligned4(x) && vec::aligned4(dy) && vec::aligned4(dx))
    backward_dx_impl<4>(m, c, x, dy, mean, var, gamma, beta, eps, act, sums, total_m, dx, stream);
  else
    backward_dx_impl<1>(m, c, x, dy, mean, var, gamma, beta, eps, act, sums, total_m, dx, stream);
}

void batchnorm_update_running(int64_t m, int c, const float* mean, const float* var, float momentum,
                              float* running_mean, float* running_var, cudaStream_t stream) {
  if (c <= 0) return;
  // The biased variance for m <= 1, as the CPU op does, so one call cannot write inf.
  const double unbias = m > 1 ? double(m) / double(m - 1) : 1.0;
  update_running_kernel<<<(c + 255) / 256, 256, 0, stream>>>(c, mean, var, momentum, unbias,
                                                             running_mean, running_var);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
