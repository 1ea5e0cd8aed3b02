// Internal to kernels/cpu: the default build targets baseline x86-64, so hot streaming loops
// are compiled three times (AVX-512, AVX2, baseline) and the best clone is chosen at load time;
// a portable binary still runs them at full vector width. Not under ThreadSanitizer: the clones'
// ifunc resolvers run during relocation, before TSan's runtime exists, and crash the process.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define OSPREY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define OSPREY_INLINE inline __attribute__((always_inline))
#else
#define OSPREY_CLONES
#define OSPREY_INLINE inline
#endif
