// bf16 GEMMs with fp32 accumulation through oneDNN's matmul primitive, for the CPU's mixed
// precision path on CPUs with bf16 instructions (AVX512-BF16, AMX).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace osprey::cpu {

// Whether oneDNN runs bf16 GEMMs in hardware here (it emulates them, slowly, elsewhere): the
// choice is made from the CPU's instruction set as oneDNN detects it, not its model name.
bool native_bf16_gemm();

// Row-major C[m][n] = op(A) op(B) (+ C when accumulate), A and B bf16, C float, products summed
// in float. op = transpose when the flag is set. Primitives are cached per shape. Only where
// native_bf16_gemm(): elsewhere oneDNN has no bf16 matmul and this throws.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const bf16* a,
               int64_t lda, const bf16* b, int64_t ldb, bool accumulate, float* c, int64_t ldc);
// The same with a bf16 C (overwritten): the float sums rounded once as oneDNN stores them,
// which saves a float output and a rounding pass over it.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const bf16* a,
               int64_t lda, const bf16* b, int64_t ldb, bf16* c, int64_t ldc);

}  // namespace osprey::cpu
