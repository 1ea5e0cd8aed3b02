// Channel vectors for the NHWC kernels: V = 4 channels per thread (one 128-bit access for
// float, 64-bit for bf16) when the channel count and every pointer allow it, else V = 1. The
// element type T is float or bf16 (kernels/bf16.h); a Vec always holds floats, so kernels
// compute in float whatever their storage.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace osprey::cuda::vec {

template <int V>
struct Vec {
  float v[V];
};

inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Whether p allows the V = 4 access for its element type.
template <typename T>
inline bool aligned4(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

template <int V>
__device__ __forceinline__ Vec<V> zero() {
  Vec<V> r;
#pragma unroll
  for (int k = 0; k < V; ++k) r.v[k] = 0.0f;
  return r;
}

__device__ __forceinline__ float bf16_low(uint32_t w) {
  return __uint_as_float(w << 16);
}
__device__ __forceinline__ float bf16_high(uint32_t w) {
  return __uint_as_float(w & 0xffff0000u);
}
__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) {
  return uint32_t(to_bf16(lo).bits) | (uint32_t(to_bf16(hi).bits) << 16);
}
// Four bf16 channels packed in 64 bits, as floats.
__device__ __forceinline__ Vec<4> bf16_quad(uint2 t) {
  return Vec<4>{{bf16_low(t.x), bf16_high(t.x), bf16_low(t.y), bf16_high(t.y)}};
}

// Plain (coherent) loads: for buffers the same kernel may also write (in-place ops).
template <int V>
__device__ __forceinline__ Vec<V> load(const float* p) {
  Vec<V> r;
  if constexpr (V == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    r.v[0] = t.x, r.v[1] = t.y, r.v[2] = t.z, r.v[3] = t.w;
  } else {
    r.v[0] = *p;
  }
  return r;
}
template <int V>
__device__ __forceinline__ Vec<V> load(const bf16* p) {
  if constexpr (V == 4)
    return bf16_quad(*reinterpret_cast<const uint2*>(p));
  else
    return Vec<V>{{to_float(*p)}};
}

// Loads through the read-only (non-coherent) cache: only for buffers no thread of the kernel
// writes.
template <int V>
__device__ __forceinline__ Vec<V> load_readonly(const float* p) {
  Vec<V> r;
  if constexpr (V == 4) {
    const float4 t = __ldg(reinterpret_cast<const float4*>(p));
    r.v[0] = t.x, r.v[1] = t.y, r.v[2] = t.z, r.v[3] = t.w;
  } else {
    r.v[0] = __ldg(p);
  }
  return r;
}
template <int V>
__device__ __forceinline__ Vec<V> load_readonly(const bf16* p) {
  if constexpr (V == 4)
    return bf16_quad(__ldg(reinterpret_cast<const uint2*>(p)));
  else
    return Vec<V>{{bf16_low(__ldg(reinterpret_cast<const unsigned short*>(p)))}};
}

template <int V>
__device__ __forceinline__ void store(float* p, const Vec<V>& r) {
  if constexpr (V == 4)
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  else
    *p = r.v[0];
}
template <int V>
__device__ __forceinline__ void store(bf16* p, const Vec<V>& r) {
  if constexpr (V == 4)
    *reinterpret_cast<uint2*>(p) = make_uint2(bf16_pair(r.v[0], r.v[1]), bf16_pair(r.v[2], r.v[3]));
  else
    *p = to_bf16(r.v[0]);
}

// Scalar element access for kernels templated on the storage type.
__device__ __forceinline__ float load1(const float* p) {
  return *p;
}
__device__ __forceinline__ float load1(const bf16* p) {
  return to_float(*p);
}
__device__ __forceinline__ void store1(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void store1(bf16* p, float v) {
  *p = to_bf16(v);
}

}  // namespace osprey::cuda::vec
