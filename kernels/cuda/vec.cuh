// Channel vectors for the NHWC kernels: V = 4 channels per thread (one 128-bit load or store)
// when the channel count and every pointer allow it, else V = 1.
#pragma once
#include <cstdint>

namespace osprey::cuda::vec {

template <int V>
struct Vec {
  float v[V];
};

inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <int V>
__device__ __forceinline__ Vec<V> zero() {
  Vec<V> r;
#pragma unroll
  for (int k = 0; k < V; ++k) r.v[k] = 0.0f;
  return r;
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
__device__ __forceinline__ void store(float* p, const Vec<V>& r) {
  if constexpr (V == 4)
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  else
    *p = r.v[0];
}

}  // namespace osprey::cuda::vec
