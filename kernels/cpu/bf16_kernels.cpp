// The bf16-storage overloads of the CPU dense convolutions and elementwise kernels (declared
// beside their fp32 versions; BatchNorm's and the depthwise convolutions' run natively in
// kernels/cpu/batchnorm.cpp and depthwise.cpp). They are the reference the CUDA bf16 kernels are
// tested against, and the CPU's mixed-precision path: widen the operands to float, run the fp32
// kernel, round each stored result once. That is exactly "bf16 storage, float arithmetic" (the
// CUDA kernels differ only in summation order), at the cost of float temporaries. On a CPU with
// bf16 instructions the 1x1 convolutions (most of MobileNetV2's time) run as oneDNN bf16 GEMMs
// instead: the same bf16 operands, products summed in float, so the same values up to summation
// order, at bf16 speed.
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm_bf16.h"

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

// fp32 weights rounded to bf16, as the bf16 GEMMs take them.
const bf16* weights_bf16(int64_t n, const float* w) {
  thread_local std::vector<bf16> buffer;
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) buffer[size_t(i)] = to_bf16(w[i]);
  return buffer.data();
}

// A 1x1 convolution is one GEMM over the NHWC pixels: in bf16 where the CPU computes in bf16.
bool bf16_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0 && s.c > 4 && native_bf16_gemm();
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
  if (bf16_pointwise(s)) {
    const int64_t rows = s.input_numel() / s.c;
    if (!bias) {  // MobileNetV2's 1x1 convolutions (a BatchNorm follows): bf16 out directly
      gemm_bf16(false, true, rows, s.k, s.c, x, s.c, weights_bf16(nw, w), s.c, y, s.k);
      return;
    }
    float* yf = scratch(2, s.output_numel());
    for (int64_t r = 0; r < rows; ++r)  // the GEMM accumulates onto the bias
      for (int j = 0; j < s.k; ++j) yf[r * s.k + j] = bias[j];
    gemm_bf16(false, true, rows, s.k, s.c, x, s.c, weights_bf16(nw, w), s.c, true, yf, s.k);
    cast(s.output_numel(), yf, y);
    return;
  }
  float* yf = scratch(2, s.output_numel());
  conv2d_forward(s, widen(0, s.input_numel(), x), rounded(1, nw, w), bias, yf);
  cast(s.output_numel(), yf, y);
}

void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db) {
  const int64_t nw = int64_t(s.k) * s.kh * s.kw * s.c;
  if (bf16_pointwise(s) && s.n > 0) {
    const int64_t rows = s.input_numel() / s.c;
    if (db)  // the bias sum alone, in float
      conv2d_backward(s, nullptr, nullptr, widen(2, s.output_numel(), dy), nullptr, nullptr, db);
    if (dw) gemm_bf16(true, false, s.k, s.c, rows, dy, s.k, x, s.c, true, dw, s.c);
    if (dx) gemm_bf16(false, false, rows, s.c, s.k, dy, s.k, weights_bf16(nw, w), s.c, dx, s.c);
    return;
  }
  float* dxf = dx ? scratch(3, s.input_numel()) : nullptr;
  conv2d_backward(s, widen(0, s.input_numel(), x), rounded(1, nw, w),
                  widen(2, s.output_numel(), dy), dxf, dw, db);
  if (dx) cast(s.input_numel(), dxf, dx);
}

}  // namespace osprey::cpu
