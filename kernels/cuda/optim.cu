#include <cmath>
#include <cstdint>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/optim.h"

namespace osprey::cuda {
namespace {

constexpr int kThreads = 256;

// The updates spell out every rounding (__fmul_rn, __fadd_rn, ...): nvcc would otherwise contract
// a * b + c into an FMA, and the CPU op (and PyTorch) round the product first.
__device__ __forceinline__ float mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float sub(float a, float b) {
  return __fsub_rn(a, b);
}

struct SgdConsts {
  float lr, momentum, keep, weight_decay;
  bool use_momentum, nesterov, first_step;
};

using AdamConsts = cpu::AdamConstants;

// Per element, in the operation order of PyTorch's single-tensor SGD (as kernels/cpu/optim.cpp).
__device__ __forceinline__ void sgd_one(const SgdConsts& k, float& p, float g, float& buf) {
  float d = g;
  if (k.weight_decay != 0.0f) d = add(d, mul(k.weight_decay, p));
  if (k.use_momentum) {
    buf = k.first_step ? d : add(mul(buf, k.momentum), mul(k.keep, d));
    d = k.nesterov ? add(d, mul(k.momentum, buf)) : buf;
  }
  p = add(p, mul(-k.lr, d));
}

__device__ __forceinline__ void adam_one(const AdamConsts& k, float& p, float g, float& m,
                                         float& v) {
  if (k.decoupled_wd) p = mul(p, k.decay);
  if (k.coupled_wd) g = add(g, mul(k.weight_decay, p));
  // exp_avg.lerp_(grad, 1 - beta1): ATen's lerp picks its formula by the weight's size.
  const float diff = sub(g, m);
  m = k.lerp_low ? add(m, mul(k.w1, diff)) : sub(g, mul(diff, sub(1.0f, k.w1)));
  v = add(mul(v, k.beta2), mul(mul(k.w2, g), g));
  const float denom = add(__fdiv_rn(__fsqrt_rn(v), k.bc2_sqrt), k.eps);
  p = add(p, mul(-k.step_size, __fdiv_rn(m, denom)));
}

// kVec: every pointer is 16-byte aligned, so the body runs on float4s and a scalar tail.
template <bool kVec>
__global__ void sgd_kernel(int64_t n, SgdConsts k, float* __restrict__ p,
                           const float* __restrict__ g, float* __restrict__ buf) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (kVec) {
    const int64_t nv = n / 4;
    for (int64_t i = tid; i < nv; i += stride) {
      float4 pv = reinterpret_cast<float4*>(p)[i];
      const float4 gv = reinterpret_cast<const float4*>(g)[i];
      float4 bv = k.use_momentum ? reinterpret_cast<float4*>(buf)[i] : float4{};
      sgd_one(k, pv.x, gv.x, bv.x);
      sgd_one(k, pv.y, gv.y, bv.y);
      sgd_one(k, pv.z, gv.z, bv.z);
      sgd_one(k, pv.w, gv.w, bv.w);
      reinterpret_cast<float4*>(p)[i] = pv;
      if (k.use_momentum) reinterpret_cast<float4*>(buf)[i] = bv;
    }
    done = nv * 4;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    float b = k.use_momentum ? buf[i] : 0.0f;
    sgd_one(k, p[i], g[i], b);
    if (k.use_momentum) buf[i] = b;
  }
}

template <bool kVec>
__global__ void adam_kernel(int64_t n, AdamConsts k, float* __restrict__ p,
                            const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (kVec) {
    const int64_t nv = n / 4;
    for (int64_t i = tid; i < nv; i += stride) {
      float4 pv = reinterpret_cast<float4*>(p)[i];
      const float4 gv = reinterpret_cast<const float4*>(g)[i];
      float4 mv = reinterpret_cast<float4*>(m)[i];
      float4 vv = reinterpret_cast<float4*>(v)[i];
      adam_one(k, pv.x, gv.x, mv.x, vv.x);
      adam_one(k, pv.y, gv.y, mv.y, vv.y);
      adam_one(k, pv.z, gv.z, mv.z, vv.z);
      adam_one(k, pv.w, gv.w, mv.w, vv.w);
      reinterpret_cast<float4*>(p)[i] = pv;
      reinterpret_cast<float4*>(m)[i] = mv;
      reinterpret_cast<float4*>(v)[i] = vv;
    }
    done = nv * 4;
  }
  for (int64_t i = done + tid; i < n; i += stride) adam_one(k, p[i], g[i], m[i], v[i]);
}

bool aligned16(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

}  // namespace

void sgd_step(int64_t n, float* p, const float* g, float* momentum_buf, float lr, float momentum,
              float dampening, float weight_decay, bool nesterov, bool first_step,
              cudaStream_t stream) {
  if (n <= 0) return;
  SgdConsts k;
  k.lr = lr;
  k.momentum = momentum;
  k.keep = 1.0f - dampening;
  k.weight_decay = weight_decay;
  k.use_momentum = momentum != 0.0f;
  k.nesterov = nesterov;
  k.first_step = first_step;
  const bool vec = aligned16(p) && aligned16(g) && (!k.use_momentum || aligned16(momentum_buf));
  if (vec) {
    sgd_kernel<true><<<blocks_for((n + 3) / 4), kThreads, 0, stream>>>(n, k, p, g, momentum_buf);
  } else {
    sgd_kernel<false><<<blocks_for(n), kThreads, 0, stream>>>(n, k, p, g, momentum_buf);
  }
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
               float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
               cudaStream_t stream) {
  if (n <= 0) return;
  // The same host-side scalars as the CPU op.
  const AdamConsts k = cpu::adam_constants(lr, beta1, beta2, eps, weight_decay, decoupled, step);
  const bool vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  if (vec) {
    adam_kernel<true><<<blocks_for((n + 3) / 4), kThreads, 0, stream>>>(n, k, p, g, m, v);
  } else {
    adam_kernel<false><<<blocks_for(n), kThreads, 0, stream>>>(n, k, p, g, m, v);
  }
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
