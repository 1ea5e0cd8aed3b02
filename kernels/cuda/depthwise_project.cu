#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/depthwise_project.h"

namespace osprey::cuda {
namespace {

using i64 = int64_t;

constexpr int kThreads = 256;
constexpr int kSharedFloats = 48 * 1024 / 4;  // the default shared-memory limit per block

struct Geo {
  int n, h, w, c, kh, kw, stride, pad, oh, ow, k;
};

__device__ __forceinline__ float activate(float v, Activation act) {
  if (act == Activation::relu) return v < 0.0f ? 0.0f : v;
  if (act == Activation::relu6) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

// One block: P consecutive output pixels (of the flattened N*OH*OW). Phase 1 writes their
// depthwise outputs, all C channels, to shared memory (consecutive threads on consecutive
// channels: coalesced loads); phase 2 gives each thread one output channel o and P sums over
// C, reading proj_w [C][K] along o (coalesced) and the tile by broadcast.
template <int P>
__global__ void __launch_bounds__(kThreads)
    depthwise_project_kernel(Geo g, const float* __restrict__ x, const float* __restrict__ dw_w,
                             const float* __restrict__ dw_b, Activation act,
                             const float* __restrict__ proj_w, const float* __restrict__ proj_b,
                             const float* __restrict__ residual, float* __restrict__ y) {
  extern __shared__ float tile[];  // [P][C]
  const i64 pixels = i64{g.n} * g.oh * g.ow;
  const i64 q0 = i64{blockIdx.x} * P;
  for (int idx = threadIdx.x; idx < P * g.c; idx += kThreads) {
    const int p = idx / g.c, ch = idx - p * g.c;
    const i64 q = q0 + p;
    float acc = 0.0f;
    if (q < pixels) {
      const int ow = int(q % g.ow), oh = int(q / g.ow % g.oh), img = int(q / (i64{g.ow} * g.oh));
      acc = dw_b ? __ldg(dw_b + ch) : 0.0f;
      for (int i = 0; i < g.kh; ++i) {
        const int ih = oh * g.stride - g.pad + i;
        if (ih < 0 || ih >= g.h) continue;
        for (int j = 0; j < g.kw; ++j) {
          const int iw = ow * g.stride - g.pad + j;
          if (iw < 0 || iw >= g.w) continue;
          acc = fmaf(__ldg(x + ((i64{img} * g.h + ih) * g.w + iw) * g.c + ch),
                     __ldg(dw_w + (i * g.kw + j) * g.c + ch), acc);
        }
      }
      acc = activate(acc, act);
    }
    tile[idx] = acc;
  }
  __syncthreads();
  for (int o = threadIdx.x; o < g.k; o += kThreads) {
    float acc[P];
#pragma unroll
    for (int p = 0; p < P; ++p) acc[p] = 0.0f;
    for (int ch = 0; ch < g.c; ++ch) {
      const float wv = __ldg(proj_w + i64{ch} * g.k + o);
#pragma unroll
      for (int p = 0; p < P; ++p) acc[p] = fmaf(tile[p * g.c + ch], wv, acc[p]);
    }
    const float b = proj_b ? __ldg(proj_b + o) : 0.0f;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const i64 q = q0 + p;
      if (q >= pixels) break;
      float v = acc[p] + b;
      if (residual) v += __ldg(residual + q * g.k + o);
      y[q * g.k + o] = v;
    }
  }
}

template <int P>
void launch(const Geo& g, const float* x, const float* dw_w, const float* dw_b, Activation act,
            const float* proj_w, const float* proj_b, const float* residual, float* y,
            cudaStream_t stream) {
  const i64 blocks = (i64{g.n} * g.oh * g.ow + P - 1) / P;
  depthwise_project_kernel<P>
      <<<unsigned(blocks), kThreads, size_t(P) * g.c * sizeof(float), stream>>>(
          g, x, dw_w, dw_b, act, proj_w, proj_b, residual, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void depthwise_project_forward(const DepthwiseShape& s, int k, const float* x, const float* dw_w,
                               const float* dw_b, Activation act, const float* proj_w,
                               const float* proj_b, const float* residual, float* y,
                               cudaStream_t stream) {
  const Geo g{s.n, s.h, s.w, s.c, s.kh, s.kw, s.stride, s.pad, s.oh(), s.ow(), k};
  if (i64{g.n} * g.oh * g.ow <= 0 || g.c <= 0 || k <= 0) return;
  // The tile holds P pixels x C channels; wide blocks take fewer pixels per tile.
  if (8 * g.c <= kSharedFloats)
    launch<8>(g, x, dw_w, dw_b, act, proj_w, proj_b, residual, y, stream);
  else if (2 * g.c <= kSharedFloats)
    launch<2>(g, x, dw_w, dw_b, act, proj_w, proj_b, residual, y, stream);
  else
    fail("depthwise_project_forward: ", g.c, " channels do not fit a shared-memory tile");
}

}  // namespace osprey::cuda
