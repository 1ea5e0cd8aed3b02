#include <cstdint>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/pool.h"

namespace osprey::cuda {
namespace {

using i64 = int64_t;

constexpr int kThreads = 256;

int grid_for(i64 threads) {
  return int((threads + kThreads - 1) / kThreads);
}

// One output element per thread; consecutive threads take consecutive channels, so every tap
// is a coalesced read of a pixel's channels. Scan order and the comparison are the CPU op's:
// the first valid tap seeds the maximum (padding never wins), strict '>' keeps the first of
// equal maxima and a NaN always takes over, so it propagates.
__global__ void __launch_bounds__(kThreads)
    maxpool_forward_kernel(int n, int h, int w, int c, int kh, int kw, int stride, int pad,
                           int oh_n, int ow_n, const float* __restrict__ x, float* __restrict__ y,
                           int32_t* __restrict__ argmax) {
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{n} * oh_n * ow_n * c) return;
  const int ch = int(idx % c);
  const i64 pix = idx / c;
  const int ow = int(pix % ow_n), oh = int(pix / ow_n % oh_n);
  const i64 img = pix / ow_n / oh_n;
  const int h0 = oh * stride - pad, w0 = ow * stride - pad;
  const int i_lo = max(h0, 0), i_hi = min(h0 + kh, h), j_lo = max(w0, 0), j_hi = min(w0 + kw, w);
  float best = -INFINITY;
  int32_t arg = -1;
  if (i_lo < i_hi && j_lo < j_hi) {
    const float* xi = x + img * h * w * c + ch;
    arg = i_lo * w + j_lo;
    best = xi[i64{arg} * c];
    for (int ih = i_lo; ih < i_hi; ++ih)
      for (int iw = ih == i_lo ? j_lo + 1 : j_lo; iw < j_hi; ++iw) {
        const int32_t at = ih * w + iw;
        const float v = xi[i64{at} * c];
        if (v > best || v != v) best = v, arg = at;
      }
  }
  y[idx] = best;
  argmax[idx] = arg;
}

// Gather, one input element per thread: sums dy over the windows that cover the input and
// chose it, in increasing output order (the order in which the CPU op scatters), so overlapping
// windows need neither zeroing nor atomics and the sums match the CPU's bit for bit.
__global__ void __launch_bounds__(kThreads)
    maxpool_backward_kernel(int n, int h, int w, int c, int kh, int kw, int stride, int pad,
                            int oh_n, int ow_n, const float* __restrict__ dy,
                            const int32_t* __restrict__ argmax, float* __restrict__ dx) {
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{n} * h * w * c) return;
  const int ch = int(idx % c);
  const i64 pix = idx / c;
  const int iw = int(pix % w), ih = int(pix / w % h);
  const i64 img = pix / w / h;
  const int32_t me = ih * w + iw;
  // Outputs o with o * stride - pad <= i < o * stride - pad + k.
  const int oh_lo = max(0, (ih + pad - kh + stride) / stride),
            oh_hi = min(oh_n - 1, (ih + pad) / stride);
  const int ow_lo = max(0, (iw + pad - kw + stride) / stride),
            ow_hi = min(ow_n - 1, (iw + pad) / stride);
  float sum = 0.0f;
  const i64 base = img * oh_n * ow_n;
  for (int oh = oh_lo; oh <= oh_hi; ++oh)
    for (int ow = ow_lo; ow <= ow_hi; ++ow) {
      const i64 o = (base + i64{oh} * ow_n + ow) * c + ch;
      if (argmax[o] == me) sum += dy[o];
    }
  dx[idx] = sum;
}

// One (image, channel) per thread, summing the pixels in order and dividing once, like the CPU.
__global__ void __launch_bounds__(kThreads)
    gap_forward_kernel(int n, int hw, int c, const float* __restrict__ x, float* __restrict__ y) {
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{n} * c) return;
  const int ch = int(idx % c);
  const float* xi = x + (idx / c) * hw * c + ch;
  float sum = 0.0f;
  for (int p = 0; p < hw; ++p) sum += xi[i64{p} * c];
  y[idx] = hw > 0 ? sum / float(hw) : sum;
}

__global__ void __launch_bounds__(kThreads)
    gap_backward_kernel(int n, int hw, int c, const float* __restrict__ dy,
                        float* __restrict__ dx) {
  const i64 idx = blockIdx.x * i64{kThreads} + threadIdx.x;
  if (idx >= i64{n} * hw * c) return;
  const int ch = int(idx % c);
  dx[idx] = dy[idx / (i64{hw} * c) * c + ch] / float(hw);
}

}  // namespace

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax,
                       cudaStream_t stream) {
  const int oh = s.oh(), ow = s.ow();
  if (s.n <= 0 || oh <= 0 || ow <= 0 || s.c <= 0) return;
  maxpool_forward_kernel<<<grid_for(i64{s.n} * oh * ow * s.c), kThreads, 0, stream>>>(
      s.n, s.h, s.w, s.c, s.kh, s.kw, s.stride, s.pad, oh, ow, x, y, argmax);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx,
                        cudaStream_t stream) {
  const int oh = s.oh() > 0 ? s.oh() : 0, ow = s.ow() > 0 ? s.ow() : 0;
  if (s.n <= 0 || s.c <= 0 || s.h <= 0 || s.w <= 0) return;
  maxpool_backward_kernel<<<grid_for(i64{s.n} * s.h * s.w * s.c), kThreads, 0, stream>>>(
      s.n, s.h, s.w, s.c, s.kh, s.kw, s.stride, s.pad, oh, ow, dy, argmax, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void global_avg_pool_forward(int n, int hw, int c, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  gap_forward_kernel<<<grid_for(i64{n} * c), kThreads, 0, stream>>>(n, hw, c, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void global_avg_pool_backward(int n, int hw, int c, const float* dy, float* dx,
                              cudaStream_t stream) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  gap_backward_kernel<<<grid_for(i64{n} * hw * c), kThreads, 0, stream>>>(n, hw, c, dy, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
