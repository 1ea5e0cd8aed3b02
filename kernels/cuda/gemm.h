// GEMM through cuBLASLt and the linear layer; same semantics as kernels/cpu/gemm.h.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bf16.h"

namespace osprey::cuda {

// Row-major C[m][n] = alpha * op(A) op(B) + beta * C. fp32 in and out; accumulation in fp32
// (TF32 tensor cores only when set_tf32(true)).
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc, cudaStream_t stream);
// The same with A and B of one element type and C of another (bf16 = kernels/bf16.h):
// bf16 x bf16 -> bf16 or fp32 on tensor cores, always with fp32 accumulation and fp32
// alpha/beta.
enum class GemmType : uint8_t { f32, bf16 };
void gemm(GemmType ab, GemmType c_type, bool trans_a, bool trans_b, int m, int n, int k,
          float alpha, const void* a, int lda, const void* b, int ldb, float beta, void* c, int ldc,
          cudaStream_t stream);
// Lets fp32 GEMMs use TF32 tensor cores (off by default: tests compare with the CPU at fp32).
void set_tf32(bool on);

// x [n][in], w [out][in], bias [out] or null -> y [n][out].
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* bias,
                    float* y, cudaStream_t stream);
// dx overwritten (skipped when null); dw, db accumulated (skipped when null).
void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, cudaStream_t stream);

// Every row of a row-major [rows][cols] matrix set to `row` (a bias, before a beta = 1 GEMM).
void broadcast_rows(int64_t rows, int cols, const float* row, float* y, cudaStream_t stream);

// Column sums of a row-major [rows][cols] matrix added into out (+=), accumulated in double.
void add_column_sums(int64_t rows, int cols, const float* a, float* out, cudaStream_t stream);
void add_column_sums(int64_t rows, int cols, const bf16* a, float* out, cudaStream_t stream);

}  // namespace osprey::cuda
