// GEMM and the linear layer (y = x W^T + b), through oneDNN.
#pragma once
#include <cstdint>
#include <vector>

namespace osprey::cpu {

// Row-major C[m][n] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set.
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

// x [n][in], w [out][in] (PyTorch's layout), bias [out] or null -> y [n][out].
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* bias,
                    float* y);
// dx overwritten (skipped when null); dw, db accumulated (skipped when null).
void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db);

// For roofline benchmarks: while recording, every sgemm's shape and time is accumulated (one
// clock read around each call; nothing when off). Starting a recording clears the last one.
struct GemmShape {
  bool trans_a = false, trans_b = false;
  int m = 0, n = 0, k = 0;
  bool operator<(const GemmShape& o) const;
};
struct GemmRecord {
  GemmShape shape;
  int64_t calls = 0;
  double seconds = 0.0;
};
void record_gemms(bool on);
std::vector<GemmRecord> recorded_gemms();  // in shape order

}  // namespace osprey::cpu
