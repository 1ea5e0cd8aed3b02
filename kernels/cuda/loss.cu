#include <cmath>
#include <cstdint>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/stream_buffer.cuh"

namespace osprey::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

// Block-wide reduction in a fixed tree order (deterministic); every thread gets the result.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  for (int o = kWarp / 2; o > 0; o /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? shared[lane] : shared[0];
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const T other = __shfl_down_sync(0xffffffffu, v, o);
      if (lane + o < warps) v = op(v, other);
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return b > a ? b : a; }
};
struct SumOp {
  __device__ double operator()(double a, double b) const { return a + b; }
};

// One block per row: probabilities and that row's loss term, in the CPU op's arithmetic (float
// exp of the max-shifted logit, double sums and log, float reciprocal scale).
__global__ void softmax_xent_rows_kernel(int classes, const float* __restrict__ logits,
                                         const int64_t* __restrict__ labels, double eps,
                                         float* __restrict__ probs, double* __restrict__ row_loss) {
  __shared__ float fshared[kWarp];
  __shared__ double dshared[kWarp];
  const int64_t row = blockIdx.x;
  const float* z = logits + row * classes;
  float* p = probs + row * classes;
  float zmax = -INFINITY;
  for (int c = threadIdx.x; c < classes; c += blockDim.x) zmax = MaxOp()(zmax, z[c]);
  zmax = block_reduce(zmax, MaxOp(), fshared);
  double sum = 0.0, zsum = 0.0;
  for (int c = threadIdx.x; c < classes; c += blockDim.x) {
    const float e = expf(z[c] - zmax);
    p[c] = e;
    sum += e;
    zsum += z[c];
  }
  sum = block_reduce(sum, SumOp(), dshared);
  zsum = block_reduce(zsum, SumOp(), dshared);
  const float inv = static_cast<float>(1.0 / sum);
  for (int c = threadIdx.x; c < classes; c += blockDim.x) p[c] *= inv;
  if (threadIdx.x == 0) {
    const double lse = zmax + log(sum);
    const double nll = lse - z[labels[row]];
    const double smooth = lse - zsum / classes;
    row_loss[row] = (1.0 - eps) * nll + eps * smooth;
  }
}

__global__ void mean_kernel(int n, const double* __restrict__ v, float* __restrict__ out) {
  __shared__ double shared[kWarp];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
  s = block_reduce(s, SumOp(), shared);
  if (threadIdx.x == 0) *out = static_cast<float>(s / n);
}

__global__ void softmax_xent_backward_kernel(int n, int classes, const float* __restrict__ probs,
                                             const int64_t* __restrict__ labels, float off,
                                             float on, const float* __restrict__ dloss,
                                             float* __restrict__ dlogits) {
  const float g = *dloss / static_cast<float>(n);
  const int64_t total = int64_t(n) * classes;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / classes;
    const int c = int(i - row * classes);
    dlogits[i] = g * (probs[i] - (c == labels[row] ? on : off));
  }
}

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

}  // namespace

void softmax_cross_entropy_forward(int n, int classes, const float* logits, const int64_t* labels,
                                   float label_smoothing, float* probs, float* loss,
                                   cudaStream_t stream) {
  if (n <= 0 || classes <= 0) {
    // The CPU op returns 0 for an empty batch.
    if (loss) OSPREY_CUDA_CHECK(cudaMemsetAsync(loss, 0, sizeof(float), stream));
    return;
  }
  const StreamBuffer<double> row_loss_buffer(n, stream);
  double* row_loss = row_loss_buffer.get();
  // Few classes (the usual case) waste most of a wide block, so size it to the row.
  const int threads = classes >= kThreads ? kThreads : ((classes + kWarp - 1) / kWarp) * kWarp;
  softmax_xent_rows_kernel<<<n, threads, 0, stream>>>(classes, logits, labels,
                                                      double(label_smoothing), probs, row_loss);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  mean_kernel<<<1, 1024, 0, stream>>>(n, row_loss, loss);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void softmax_cross_entropy_backward(int n, int classes, const float* probs, const int64_t* labels,
                                    float label_smoothing, const float* dloss, float* dlogits,
                                    cudaStream_t stream) {
  if (n <= 0 || classes <= 0) return;
  // Same float expressions as the CPU op, evaluated once on the host.
  const float off = label_smoothing / static_cast<float>(classes);
  const float on = 1.0f - label_smoothing + off;
  softmax_xent_backward_kernel<<<blocks_for(int64_t(n) * classes), kThreads, 0, stream>>>(
      n, classes, probs, labels, off, on, dloss, dlogits);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
