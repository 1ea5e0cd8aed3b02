#include <algorithm>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/stream_buffer.cuh"
#include "kernels/cuda/vec.cuh"

namespace osprey::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void relu_forward_kernel(int64_t n, const float* __restrict__ x, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = fmaxf(x[i], 0.0f);
}

__global__ void relu_backward_kernel(int64_t n, const float* __restrict__ y,
                                     const float* __restrict__ dy, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// Written as "v < 0 ? 0 : v" so that NaN passes through, as in the CPU op and PyTorch.
__device__ __forceinline__ float relu_value(float v) {
  return v < 0.0f ? 0.0f : v;
}
__device__ __forceinline__ float relu6_value(float v) {
  return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
}

// No __restrict__: y may alias x (and dx may alias dy) in the activation ops.
__global__ void activation_forward_kernel(int64_t n, Activation act, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = act == Activation::relu ? relu_value(x[i]) : relu6_value(x[i]);
}

__global__ void activation_backward_kernel(int64_t n, Activation act, const float* y,
                                           const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float v = y[i], g = dy[i];
    const bool pass = act == Activation::relu ? v > 0.0f : (v > 0.0f && v < 6.0f);
    dx[i] = pass ? g : 0.0f;
  }
}

// The counter-based hash of kernels/cpu/elementwise.cpp, bit for bit: a mask is a pure function
// of (seed, offset + i), so the CPU and the GPU draw the same one.
__host__ __device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 24 bits: exact in float, so no rounding-mode difference.
__device__ __forceinline__ float uniform(uint64_t key, uint64_t counter) {
  const uint64_t h = mix64(key + counter * 0x9e3779b97f4a7c15ULL);
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// 1 / (1 - p) rounded once from double; p = 1 keeps nothing, so the scale must not be inf.
float keep_scale(float p) {
  return p < 1.0f ? static_cast<float>(1.0 / (1.0 - static_cast<double>(p))) : 0.0f;
}

__global__ void dropout_forward_kernel(int64_t n, float p, uint64_t key, uint64_t offset,
                                       float scale, const float* x, float* y,
                                       uint8_t* __restrict__ mask) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const bool keep = uniform(key, offset + static_cast<uint64_t>(i)) >= p;
    mask[i] = keep ? 1 : 0;
    y[i] = keep ? __fmul_rn(x[i], scale) : 0.0f;
  }
}

__global__ void dropout_backward_kernel(int64_t n, float scale, const uint8_t* __restrict__ mask,
                                        const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __fmul_rn(dy[i], scale);
    dx[i] = mask[i] ? g : 0.0f;
  }
}

__global__ void fill_kernel(int64_t n, float value, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

// T is float or bf16 (float arithmetic, one rounding per stored value).
template <typename T>
__global__ void add_kernel(int64_t n, const T* a, const T* b, T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    vec::store1(y + i, vec::load1(a + i) + vec::load1(b + i));
}

// No FMA: the CPU op rounds alpha * x before the add.
template <typename T>
__global__ void axpy_kernel(int64_t n, float alpha, const T* x, T* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    vec::store1(y + i, __fadd_rn(vec::load1(y + i), __fmul_rn(alpha, vec::load1(x + i))));
}

template <typename From, typename To>
__global__ void cast_kernel(int64_t n, const From* __restrict__ x, To* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    vec::store1(y + i, vec::load1(x + i));
}

__global__ void scale_kernel(int64_t n, float alpha, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] *= alpha;
}

// Fixed-order block reduction of doubles (kThreads threads); thread 0 gets the total.
__device__ double block_sum(double v) {
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  return shared[0];
}

// Stage 1: one double partial per block. The grid size depends only on n and every thread's
// elements and the fold are in a fixed order, so the sum is reproducible run to run.
__global__ void sum_squares_partial_kernel(int64_t n, const float* __restrict__ x,
                                           double* __restrict__ part) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double v = x[i];
    s += v * v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sum_partials_kernel(int parts, const double* __restrict__ part,
                                    double* __restrict__ out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) s += part[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *out = s;
}

int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  if (n <= 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, y, dy, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void activation_forward(int64_t n, Activation act, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  if (act == Activation::none) {
    if (x != y)
      OSPREY_CUDA_CHECK(cudaMemcpyAsync(y, x, sizeof(float) * n, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  activation_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, act, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void activation_backward(int64_t n, Activation act, const float* y, const float* dy, float* dx,
                         cudaStream_t stream) {
  if (n <= 0) return;
  if (act == Activation::none) {
    if (dx != dy)
      OSPREY_CUDA_CHECK(
          cudaMemcpyAsync(dx, dy, sizeof(float) * n, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  activation_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, act, y, dy, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                     uint8_t* mask, cudaStream_t stream) {
  if (n <= 0) return;
  // Mixing the seed first keeps streams of nearby seeds from being shifted copies (as the CPU).
  const uint64_t key = mix64(seed ^ 0x5851f42d4c957f2dULL);
  dropout_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, p, key, offset, keep_scale(p),
                                                                 x, y, mask);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx,
                      cudaStream_t stream) {
  if (n <= 0) return;
  dropout_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, keep_scale(p), mask, dy, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void fill(int64_t n, float value, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, value, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void add(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, a, b, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  axpy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, alpha, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void add(int64_t n, const bf16* a, const bf16* b, bf16* y, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, a, b, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void axpy(int64_t n, float alpha, const bf16* x, bf16* y, cudaStream_t stream) {
  if (n <= 0) return;
  axpy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, alpha, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void cast(int64_t n, const float* x, bf16* y, cudaStream_t stream) {
  if (n <= 0) return;
  cast_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void cast(int64_t n, const bf16* x, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  cast_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, x, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void scale(int64_t n, float alpha, float* y, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, alpha, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void sum_squares(int64_t n, const float* x, double* out, cudaStream_t stream) {
  if (n <= 0) {
    OSPREY_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(double), stream));  // the empty sum
    return;
  }
  const int parts = std::min(blocks_for(n), 1024);
  const StreamBuffer<double> part_buffer(parts, stream);
  double* part = part_buffer.get();
  sum_squares_partial_kernel<<<parts, kThreads, 0, stream>>>(n, x, part);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  sum_partials_kernel<<<1, kThreads, 0, stream>>>(parts, part, out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
