// Internal to kernels/cpu: the default build targets baseline x86-64, so hot streaming loops
// are compiled three times (AVX-512, AVX2, baseline) and the best clone is chosen at load time;
// a portable binary still runs them at full vector width. Not under ThreadSanitizer: the clones'
// ifunc resolvers run during relocation, before TSan's runtime exists, and crash the process.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define OSPREY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define OSPREY_INLINE inline __attribute__((always_inline))
// After a lambda's parameter list: a lambda the inliner leaves out of line (GCC's unit-growth
// limit decides) runs as baseline x86-64 like any other helper.
#define OSPREY_INLINE_LAMBDA __attribute__((always_inline))
#else
#define OSPREY_CLONES
#define OSPREY_INLINE inline
#define OSPREY_INLINE_LAMBDA
#endif

#include <cstdint>

#include "kernels/bf16.h"

namespace osprey::cpu {

// Activations of either storage type read and written as float, for kernels templated on it:
// float as it is, bf16 read exactly and rounded once when stored.
OSPREY_INLINE float load_as_float(const float* p, int64_t i) {
  return p[i];
}
OSPREY_INLINE float load_as_float(const bf16* p, int64_t i) {
  return to_float(p[i]);
}
OSPREY_INLINE void store_from_float(float* p, int64_t i, float v) {
  p[i] = v;
}
OSPREY_INLINE void store_from_float(bf16* p, int64_t i, float v) {
  p[i] = to_bf16(v);
}

}  // namespace osprey::cpu
