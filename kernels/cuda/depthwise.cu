#include <cstdint>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/depthwise.h"
#include "kernels/cuda/stream_buffer.cuh"
#include "kernels/cuda/vec.cuh"

namespace osprey::cuda {
namespace {

using i64 = int64_t;

constexpr int kThreads = 256;

// V channels per thread (vec.cuh). Inputs of these kernels never alias their outputs, so every
// load goes through the read-only cache.
using vec::store;
using vec::Vec;
using vec::zero;
// Activations are float or bf16 (T below); weights, biases and partial sums are float.
template <int V, typename T>
__device__ __forceinline__ Vec<V> load(const T* p) {
  return vec::load_readonly<V>(p);
}
__device__ __forceinline__ float ldg1(const float* p) {
  return __ldg(p);
}
__device__ __forceinline__ float ldg1(const bf16* p) {
  return vec::bf16_low(__ldg(reinterpret_cast<const unsigned short*>(p)));
}

// The shape as the kernels see it: DepthwiseShape's oh()/ow() are host functions.
struct Geo {
  int n, h, w, c, kh, kw, stride, pad, oh, ow;
};

Geo geo(const DepthwiseShape& s) {
  return {s.n, s.h, s.w, s.c, s.kh, s.kw, s.stride, s.pad, s.oh(), s.ow()};
}

template <int V>
__device__ __forceinline__ void fma_into(Vec<V>& acc, const Vec<V>& a, const Vec<V>& b) {
#pragma unroll
  for (int k = 0; k < V; ++k) acc.v[k] = fmaf(a.v[k], b.v[k], acc.v[k]);
}

template <int V>
__device__ __forceinline__ void add_into(Vec<V>& acc, const Vec<V>& a) {
#pragma unroll
  for (int k = 0; k < V; ++k) acc.v[k] += a.v[k];
}

// 3x3 correlation of `in` [N][IH][IW][C] into `out` [N][OH][OW][C], each thread TW consecutive
// outputs of one row: a row of (TW-1)*S+3 input pixels is loaded once into registers and feeds
// all TW outputs (4.5 loads per output at stride 1 instead of 9). kFlip turns it into the
// stride-1 input gradient (dy correlated with the 180-degree-rotated filter, pad' = 2 - pad).
template <int V, int S, int TW, bool kFlip, typename T>
__global__ void __launch_bounds__(kThreads)
    conv3x3_strip_kernel(int n, int ih_n, int iw_n, int oh_n, int ow_n, int c, int pad,
                         const T* __restrict__ in, const float* __restrict__ w,
                         const float* __restrict__ bias, T* __restrict__ out) {
  const int cg_n = c / V, owt_n = (ow_n + TW - 1) / TW;
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{n} * oh_n * owt_n * cg_n) return;
  const int c0 = int(idx % cg_n) * V;
  i64 r = idx / cg_n;
  const int ow0 = int(r % owt_n) * TW;
  r /= owt_n;
  const int oh = int(r % oh_n);
  const i64 img = r / oh_n;

  Vec<V> acc[TW];
  const Vec<V> b0 = bias ? load<V>(bias + c0) : zero<V>();
#pragma unroll
  for (int t = 0; t < TW; ++t) acc[t] = b0;
  const T* xi = in + img * ih_n * iw_n * c + c0;
  constexpr int kCols = (TW - 1) * S + 3;
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    const int ih = oh * S - pad + i;
    if (ih < 0 || ih >= ih_n) continue;
    Vec<V> wv[3];
#pragma unroll
    for (int j = 0; j < 3; ++j) wv[j] = load<V>(w + (kFlip ? 8 - (i * 3 + j) : i * 3 + j) * c + c0);
    Vec<V> xv[kCols];
    const T* xr = xi + i64{ih} * iw_n * c;
#pragma unroll
    for (int k = 0; k < kCols; ++k) {
      const int iw = ow0 * S - pad + k;
      xv[k] = iw >= 0 && iw < iw_n ? load<V>(xr + i64{iw} * c) : zero<V>();
    }
#pragma unroll
    for (int t = 0; t < TW; ++t)
#pragma unroll
      for (int j = 0; j < 3; ++j) fma_into(acc[t], xv[t * S + j], wv[j]);
  }
  T* yp = out + ((img * oh_n + oh) * ow_n + ow0) * c + c0;
#pragma unroll
  for (int t = 0; t < TW; ++t)
    if (ow0 + t < ow_n) store(yp + i64{t} * c, acc[t]);
}

// Any kernel size and stride: one output per thread.
template <int V, typename T>
__global__ void __launch_bounds__(kThreads)
    forward_generic_kernel(Geo s, const T* __restrict__ x, const float* __restrict__ w,
                           const float* __restrict__ bias, T* __restrict__ y) {
  const int c = s.c, cg_n = c / V, oh_n = s.oh, ow_n = s.ow;
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{s.n} * oh_n * ow_n * cg_n) return;
  const int c0 = int(idx % cg_n) * V;
  const i64 pix = idx / cg_n;
  const int ow = int(pix % ow_n), oh = int(pix / ow_n % oh_n);
  const i64 img = pix / ow_n / oh_n;
  Vec<V> acc = bias ? load<V>(bias + c0) : zero<V>();
  for (int i = 0; i < s.kh; ++i) {
    const int ih = oh * s.stride - s.pad + i;
    if (ih < 0 || ih >= s.h) continue;
    for (int j = 0; j < s.kw; ++j) {
      const int iw = ow * s.stride - s.pad + j;
      if (iw < 0 || iw >= s.w) continue;
      fma_into(acc, load<V>(x + ((img * s.h + ih) * s.w + iw) * c + c0),
               load<V>(w + (i * s.kw + j) * c + c0));
    }
  }
  store(y + pix * c + c0, acc);
}

// Input gradient as a gather, one input pixel per thread: input (ih, iw) receives tap i from
// output row (ih + pad - i) / stride when that divides exactly, i.e. every stride-th tap from
// (ih + pad) mod stride. K and S fix the 3x3 / stride-2 case at compile time (0: runtime).
template <int V, int K, int S, typename T>
__global__ void __launch_bounds__(kThreads)
    input_grad_gather_kernel(Geo s, const T* __restrict__ dy, const float* __restrict__ w,
                             T* __restrict__ dx) {
  const int kh = K ? K : s.kh, kw = K ? K : s.kw, st = S ? S : s.stride;
  const int c = s.c, cg_n = c / V, oh_n = s.oh, ow_n = s.ow;
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{s.n} * s.h * s.w * cg_n) return;
  const int c0 = int(idx % cg_n) * V;
  const i64 pix = idx / cg_n;
  const int iw = int(pix % s.w), ih = int(pix / s.w % s.h);
  const i64 img = pix / s.w / s.h;
  const T* dyi = dy + img * oh_n * ow_n * c + c0;
  Vec<V> acc = zero<V>();
  for (int i = (ih + s.pad) % st; i < kh; i += st) {
    const int oh = (ih + s.pad - i) / st;  // exact: ih + pad - i is a multiple of st
    if (oh < 0) break;
    if (oh >= oh_n) continue;
    for (int j = (iw + s.pad) % st; j < kw; j += st) {
      const int ow = (iw + s.pad - j) / st;
      if (ow < 0) break;
      if (ow >= ow_n) continue;
      fma_into(acc, load<V>(dyi + (i64{oh} * ow_n + ow) * c), load<V>(w + (i * kw + j) * c + c0));
    }
  }
  store(dx + pix * c + c0, acc);
}

// Sums v over threadIdx.y (blockDim.y need not be a power of two) in a fixed order, so the
// per-block partials are reproducible. Result valid in threads with threadIdx.y == 0.
template <int V>
__device__ Vec<V> block_sum_y(Vec<V> v, float* red) {
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x, by = blockDim.y;
  __syncthreads();  // red may still be read by the previous call
#pragma unroll
  for (int k = 0; k < V; ++k) red[(ty * bx + tx) * V + k] = v.v[k];
  __syncthreads();
  int half = 1;
  while (half * 2 < by) half *= 2;
  for (; half > 0; half /= 2) {
    if (ty < half && ty + half < by)
#pragma unroll
      for (int k = 0; k < V; ++k)
        red[(ty * bx + tx) * V + k] += red[((ty + half) * bx + tx) * V + k];
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < V; ++k) v.v[k] = red[tx * V + k];
  return v;
}

// Weight-gradient partials, 3x3, one channel per thread (a warp reads 32 consecutive
// channels: 128-byte transactions) and one output row per loop step: the 3x3 input window
// slides along the row in registers, so each output costs 3 (stride 1) or 6 (stride 2) input
// loads and one dy load, with ~30 registers (full occupancy). part[blockIdx.x][10][C].
template <int S, typename T>
__global__ void __launch_bounds__(kThreads)
    weight_grad3x3_rows_kernel(Geo s, const T* __restrict__ x, const T* __restrict__ dy,
                               float* __restrict__ part) {
  __shared__ float red[10 * kThreads];
  const int c = s.c, ch = blockIdx.y * blockDim.x + threadIdx.x;
  const bool active = ch < c;
  float acc[10];
#pragma unroll
  for (int q = 0; q < 10; ++q) acc[q] = 0.0f;
  const i64 rows = i64{s.n} * s.oh;
  for (i64 r = blockIdx.x * i64{blockDim.y} + threadIdx.y; active && r < rows;
       r += i64{gridDim.x} * blockDim.y) {
    const int oh = int(r % s.oh);
    const i64 img = r / s.oh;
    const T* g = dy + r * s.ow * c + ch;
    const T* xr[3];
    bool row_ok[3];
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      const int ih = oh * S - s.pad + i;
      row_ok[i] = ih >= 0 && ih < s.h;
      xr[i] = x + ((img * s.h + (row_ok[i] ? ih : 0)) * s.w) * c + ch;
    }
    auto at = [&](int i, int iw) {
      return row_ok[i] && iw >= 0 && iw < s.w ? ldg1(xr[i] + i64{iw} * c) : 0.0f;
    };
    float win[3][3];
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
      for (int j = 0; j < 3; ++j) win[i][j] = at(i, j - s.pad);
#pragma unroll 4
    for (int ow = 0; ow < s.ow; ++ow) {
      if (ow > 0) {
        const int iw0 = ow * S - s.pad;
#pragma unroll
        for (int i = 0; i < 3; ++i) {
          if (S == 1) {
            win[i][0] = win[i][1], win[i][1] = win[i][2], win[i][2] = at(i, iw0 + 2);
          } else {
            win[i][0] = win[i][2], win[i][1] = at(i, iw0 + 1), win[i][2] = at(i, iw0 + 2);
          }
        }
      }
      const float gv = ldg1(g + i64{ow} * c);
      acc[9] += gv;
#pragma unroll
      for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) acc[i * 3 + j] = fmaf(gv, win[i][j], acc[i * 3 + j]);
    }
  }
  // One shared-memory pass for all ten sums: red[q][ty][tx], then each (q, tx) summed over ty
  // in a fixed order.
#pragma unroll
  for (int q = 0; q < 10; ++q)
    red[(q * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x] = acc[q];
  __syncthreads();
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int o = tid; o < 10 * int(blockDim.x); o += blockDim.x * blockDim.y) {
    const int q = o / blockDim.x, tx = o % blockDim.x, chx = blockIdx.y * blockDim.x + tx;
    float sum = 0.0f;
    for (int ty = 0; ty < int(blockDim.y); ++ty)
      sum += red[(q * blockDim.y + ty) * blockDim.x + tx];
    if (chx < c) part[(i64{blockIdx.x} * 10 + q) * c + chx] = sum;
  }
}

// Weight-gradient partials for any kernel: one tap per blockIdx.z (tap kh*kw is the bias), one
// output pixel per loop step. Same partial layout as above with kh*kw+1 taps.
template <int V, typename T>
__global__ void __launch_bounds__(kThreads)
    weight_grad_generic_kernel(Geo s, const T* __restrict__ x, const T* __restrict__ dy,
                               float* __restrict__ part) {
  __shared__ float red[kThreads * V];
  const int c = s.c, cg_n = c / V, oh_n = s.oh, ow_n = s.ow, taps = s.kh * s.kw;
  const int cg = blockIdx.y * blockDim.x + threadIdx.x, q = blockIdx.z;
  const int c0 = cg * V;
  const bool active = cg < cg_n;
  const int i = q / s.kw, j = q % s.kw;
  Vec<V> acc = zero<V>();
  const i64 pixels = i64{s.n} * oh_n * ow_n;
  for (i64 p = blockIdx.x * i64{blockDim.y} + threadIdx.y; active && p < pixels;
       p += i64{gridDim.x} * blockDim.y) {
    const Vec<V> g = load<V>(dy + p * c + c0);
    if (q == taps) {
      add_into(acc, g);
      continue;
    }
    const int ow = int(p % ow_n), oh = int(p / ow_n % oh_n);
    const i64 img = p / ow_n / oh_n;
    const int ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
    if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
    fma_into(acc, g, load<V>(x + ((img * s.h + ih) * s.w + iw) * c + c0));
  }
  const Vec<V> sum = block_sum_y(acc, red);
  if (threadIdx.y == 0 && active) store(part + (i64{blockIdx.x} * (taps + 1) + q) * c + c0, sum);
}

// Second stage: out[o] += sum over the g partials of part[g][o], o in [0, (taps+1)*C), summed
// in double in a fixed order. 32 outputs x 8 partial strides per block.
__global__ void __launch_bounds__(kThreads)
    weight_grad_finish_kernel(int parts, int taps, int c, const float* __restrict__ part,
                              float* __restrict__ dw, float* __restrict__ db) {
  __shared__ double red[8][32];
  const i64 outs = i64{taps + 1} * c;
  const i64 o = blockIdx.x * i64{32} + threadIdx.x;
  double sum = 0.0;
  if (o < outs)
    for (int g = threadIdx.y; g < parts; g += 8) sum += part[g * outs + o];
  red[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || o >= outs) return;
  sum = 0.0;
  for (int k = 0; k < 8; ++k) sum += red[k][threadIdx.x];
  const i64 wn = i64{taps} * c;
  if (o < wn) {
    if (dw) dw[o] += float(sum);
  } else if (db) {
    db[o - wn] += float(sum);
  }
}

int grid_for(i64 threads) {
  return int((threads + kThreads - 1) / kThreads);
}

bool is3x3(const DepthwiseShape& s) {
  return s.kh == 3 && s.kw == 3;
}

// The header's oh()/ow() are 0 when the window does not fit the padded input.
bool has_output(const DepthwiseShape& s) {
  return s.oh() > 0 && s.ow() > 0;
}

template <int V, typename T>
void forward_impl(const DepthwiseShape& s, const T* x, const float* w, const float* bias, T* y,
                  cudaStream_t stream) {
  const int oh = s.oh(), ow = s.ow(), cg = s.c / V;
  if (is3x3(s) && (s.stride == 1 || s.stride == 2)) {
    constexpr int kTw = 4;
    const i64 threads = i64{s.n} * oh * ((ow + kTw - 1) / kTw) * cg;
    if (s.stride == 1)
      conv3x3_strip_kernel<V, 1, kTw, false, T><<<grid_for(threads), kThreads, 0, stream>>>(
          s.n, s.h, s.w, oh, ow, s.c, s.pad, x, w, bias, y);
    else
      conv3x3_strip_kernel<V, 2, kTw, false, T><<<grid_for(threads), kThreads, 0, stream>>>(
          s.n, s.h, s.w, oh, ow, s.c, s.pad, x, w, bias, y);
  } else {
    forward_generic_kernel<V, T>
        <<<grid_for(i64{s.n} * oh * ow * cg), kThreads, 0, stream>>>(geo(s), x, w, bias, y);
  }
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <int V, typename T>
void input_grad_impl(const DepthwiseShape& s, const float* w, const T* dy, T* dx,
                     cudaStream_t stream) {
  const int cg = s.c / V;
  if (is3x3(s) && s.stride == 1 && s.pad <= 2) {
    // Stride 1: the gradient is the forward correlation of dy with the rotated filter, padded
    // by 2 - pad, which maps the OH x OW gradient back onto exactly H x W.
    constexpr int kTw = 4;
    const i64 threads = i64{s.n} * s.h * ((s.w + kTw - 1) / kTw) * cg;
    conv3x3_strip_kernel<V, 1, kTw, true, T><<<grid_for(threads), kThreads, 0, stream>>>(
        s.n, s.oh(), s.ow(), s.h, s.w, s.c, 2 - s.pad, dy, w, nullptr, dx);
  } else if (is3x3(s) && s.stride == 2) {
    input_grad_gather_kernel<V, 3, 2, T>
        <<<grid_for(i64{s.n} * s.h * s.w * cg), kThreads, 0, stream>>>(geo(s), dy, w, dx);
  } else {
    input_grad_gather_kernel<V, 0, 0, T>
        <<<grid_for(i64{s.n} * s.h * s.w * cg), kThreads, 0, stream>>>(geo(s), dy, w, dx);
  }
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <int V, typename T>
void weight_grad_impl(const DepthwiseShape& s, const T* x, const T* dy, float* dw, float* db,
                      cudaStream_t stream) {
  const int taps = s.kh * s.kw;
  const bool fast = is3x3(s) && (s.stride == 1 || s.stride == 2);
  const i64 outs = i64{taps + 1} * s.c;
  dim3 block, grid;
  if (fast) {
    // 32 channels by 8 rows per block, about 4 output rows per thread (measured on an H100
    // over MobileNetV2's shapes: fewer rows per thread spend more on the partials, more rows
    // leave SMs idle), and no more blocks than fill the GPU a few times over.
    constexpr int kRowsPerThread = 4, kMaxBlocks = 2048;
    const int gy = (s.c + 31) / 32;
    const i64 rows = i64{s.n} * s.oh();
    i64 gx = (rows + 8 * kRowsPerThread - 1) / (8 * kRowsPerThread);
    const i64 cap = kMaxBlocks / gy > 0 ? kMaxBlocks / gy : 1;
    gx = gx > cap ? cap : gx < 1 ? 1 : gx;
    block = dim3(32, 8), grid = dim3(unsigned(gx), gy);
  } else {
    // bx channel groups (a warp's worth at most) by by rows of work per block; one tap per z.
    const int cg_n = s.c / V, bx = cg_n < 32 ? cg_n : 32, by = kThreads / bx;
    const int gy = (cg_n + bx - 1) / bx, z = taps + 1;
    const i64 pixels = i64{s.n} * s.oh() * s.ow();
    i64 gx = (pixels + i64{by} * 4 - 1) / (i64{by} * 4);
    const i64 cap = 2048 / (i64{gy} * z) > 0 ? 2048 / (i64{gy} * z) : 1;
    gx = gx > cap ? cap : gx < 1 ? 1 : gx;
    block = dim3(bx, by), grid = dim3(unsigned(gx), gy, z);
  }
  const StreamBuffer<float> part_buffer(int64_t(grid.x) * outs, stream);
  float* part = part_buffer.get();
  if (fast && s.stride == 1)
    weight_grad3x3_rows_kernel<1, T><<<grid, block, 0, stream>>>(geo(s), x, dy, part);
  else if (fast)
    weight_grad3x3_rows_kernel<2, T><<<grid, block, 0, stream>>>(geo(s), x, dy, part);
  else
    weight_grad_generic_kernel<V, T><<<grid, block, 0, stream>>>(geo(s), x, dy, part);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  weight_grad_finish_kernel<<<unsigned((outs + 31) / 32), dim3(32, 8), 0, stream>>>(
      int(grid.x), taps, s.c, part, dw, db);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void forward_any(const DepthwiseShape& s, const T* x, const float* w, const float* bias, T* y,
                 cudaStream_t stream) {
  if (s.n <= 0 || s.c <= 0 || !has_output(s)) return;
  const bool vec = s.c % 4 == 0 && vec::aligned4(x) && vec::aligned4(w) && vec::aligned4(y) &&
                   (!bias || vec::aligned4(bias));
  if (vec)
    forward_impl<4>(s, x, w, bias, y, stream);
  else
    forward_impl<1>(s, x, w, bias, y, stream);
}

template <typename T>
void backward_any(const DepthwiseShape& s, const T* x, const float* w, const T* dy, T* dx,
                  float* dw, float* db, cudaStream_t stream) {
  if (s.n <= 0 || s.c <= 0) return;
  if (!has_output(s)) {
    if (dx && s.h > 0 && s.w > 0)
      OSPREY_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * s.n * s.h * s.w * s.c, stream));
    return;
  }
  const bool vec = s.c % 4 == 0 && vec::aligned4(x) && vec::aligned4(w) && vec::aligned4(dy) &&
                   (!dx || vec::aligned4(dx));
  if (dx) {
    if (vec)
      input_grad_impl<4>(s, w, dy, dx, stream);
    else
      input_grad_impl<1>(s, w, dy, dx, stream);
  }
  if (dw || db) {
    if (vec)
      weight_grad_impl<4>(s, x, dy, dw, db, stream);
    else
      weight_grad_impl<1>(s, x, dy, dw, db, stream);
  }
}

}  // namespace

void depthwise_conv2d_forward(const DepthwiseShape& s, const float* x, const float* w,
                              const float* bias, float* y, cudaStream_t stream) {
  forward_any(s, x, w, bias, y, stream);
}

void depthwise_conv2d_forward(const DepthwiseShape& s, const bf16* x, const float* w,
                              const float* bias, bf16* y, cudaStream_t stream) {
  forward_any(s, x, w, bias, y, stream);
}

void depthwise_conv2d_backward(const DepthwiseShape& s, const float* x, const float* w,
                               const float* dy, float* dx, float* dw, float* db,
                               cudaStream_t stream) {
  backward_any(s, x, w, dy, dx, dw, db, stream);
}

void depthwise_conv2d_backward(const DepthwiseShape& s, const bf16* x, const float* w,
                               const bf16* dy, bf16* dx, float* dw, float* db,
                               cudaStream_t stream) {
  backward_any(s, x, w, dy, dx, dw, db, stream);
}

}  // namespace osprey::cuda
