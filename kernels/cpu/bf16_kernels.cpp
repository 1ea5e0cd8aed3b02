// The bf16-storage overloads of the CPU kernels (declared beside their fp32 versions). They are
// the reference the CUDA bf16 kernels are tested against, and the CPU's mixed-precision path:
// widen the operands to float, run the fp32 kernel, round each stored result once. That is
// exactly "bf16 storage, float arithmetic" (the CUDA kernels differ only in summation order),
// at the cost of float temporaries; the CPU has no bf16 arithmetic to gain from anyway.
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/elementwise.h"

namespace osprey::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;

// Grow-only float scratch of the calling thread, one per operand slot (at most four operands
// are widened at once): steady-state steps neither allocate nor fault pages in.
float* scratch(int slot, int64_t n) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (b.size() < static_cast<size_t>(n)) b.resize(static_cast<size_t>(n));
  return b.data();
}

float* widen(int slot, int64_t n, const bf16* x) {
  float* v = scratch(slot, n);
  cast(n, x, v);
  return v;
}

// The values a bf16 GEMM multiplies: fp32 weights rounded to bf16, held as floats.
float* rounded(int slot, int64_t n, const float* w) {
  float* v = scratch(slot, n);
  for (int64_t i = 0; i < n; ++i) v[i] = to_float(to_bf16(w[i]));
  return v;
}

}  // namespace

void cast(int64_t n, const float* x, bf16* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
}

void cast(int64_t n, const bf16* x, float* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = to_float(x[i]);
}

void add(int64_t n, const bf16* a, const bf16* b, bf16* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(to_float(a[i]) + to_float(b[i]));
}

void axpy(int64_t n, float alpha, const bf16* x, bf16* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(to_float(y[i]) + alpha * to_float(x[i]));
}

void conv2d_forward(const Conv2dShape& s, const bf16* x, const float* w, const float* bias,
                    bf16* y) {
  const int64_t nw = int64_t(s.k) * s.kh * s.kw * s.c;
  float* yf = scratch(2, s.output_numel());
  conv2d_forward(s, widen(0, s.input_numel(), x), rounded(1, nw, w), bias, yf);
  cast(s.output_numel(), yf, y);
}

void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db) {
  const int64_t nw = int64_t(s.k) * s.kh * s.kw * s.c;
  float* dxf = dx ? scratch(3, s.input_numel()) : nullptr;
  conv2d_backward(s, widen(0, s.input_numel(), x), rounded(1, nw, w),
                  widen(2, s.output_numel(), dy), dxf, dw, db);
  if (dx) cast(s.input_numel(), dxf, dx);
}

void depthwise_conv2d_forward(const DepthwiseShape& s, const bf16* x, const float* w,
                              const float* bias, bf16* y) {
  float* yf = scratch(1, s.output_numel());
  depthwise_conv2d_forward(s, widen(0, s.input_numel(), x), w, bias, yf);
  cast(s.output_numel(), yf, y);
}

void depthwise_conv2d_backward(const DepthwiseShape& s, const bf16* x, const float* w,
                               const bf16* dy, bf16* dx, float* dw, float* db) {
  float* dxf = dx ? scratch(2, s.input_numel()) : nullptr;
  depthwise_conv2d_backward(s, widen(0, s.input_numel(), x), w, widen(1, s.output_numel(), dy), dxf,
                            dw, db);
  if (dx) cast(s.input_numel(), dxf, dx);
}

void batchnorm_stats(int64_t m, int c, const bf16* x, float* mean, float* var) {
  batchnorm_stats(m, c, widen(0, m * c, x), mean, var);
}

void batchnorm_act_forward(int64_t m, int c, const bf16* x, const float* mean, const float* var,
                           const float* gamma, const float* beta, float eps, Activation act,
                           bf16* y) {
  float* yf = widen(0, m * c, x);
  batchnorm_act_forward(m, c, yf, mean, var, gamma, beta, eps, act, yf);
  cast(m * c, yf, y);
}

void batchnorm_act_backward(int64_t m, int c, const bf16* x, const bf16* dy, const float* mean,
                            const float* var, const float* gamma, const float* beta, float eps,
                            Activation act, bool batch_stats, bf16* dx, float* dgamma,
                            float* dbeta) {
  const float* xf = widen(0, m * c, x);
  float* yf = scratch(1, m * c);  // the float output, for the mask
  batchnorm_act_forward(m, c, xf, mean, var, gamma, beta, eps, act, yf);
  float* dxf = dx ? scratch(3, m * c) : nullptr;
  batchnorm_act_backward(m, c, xf, yf, widen(2, m * c, dy), mean, var, gamma, eps, act, batch_stats,
                         dxf, dgamma, dbeta);
  if (dx) cast(m * c, dxf, dx);
}

}  // namespace osprey::cpu
