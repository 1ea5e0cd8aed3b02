// bfloat16 storage: the top half of an IEEE-754 float (8 exponent bits, 7 mantissa bits).
// Mixed-precision activations are stored like this; kernels read them as float, accumulate in
// float or double, and round once when they store.
#pragma once
#include <cstdint>
#include <cstring>

// The same conversions in CUDA device code (one definition of the rounding for both).
#ifdef __CUDACC__
#define OSPREY_HOST_DEVICE __host__ __device__
#else
#define OSPREY_HOST_DEVICE
#endif

namespace osprey {

struct bf16 {
  uint16_t bits;
};

// Round to nearest, ties to even (as __float2bfloat16_rn and PyTorch); a NaN stays a quiet NaN
// (rounding could otherwise carry its payload into the exponent and make it infinite).
OSPREY_HOST_DEVICE inline bf16 to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x0040u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}

OSPREY_HOST_DEVICE inline float to_float(bf16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace osprey
