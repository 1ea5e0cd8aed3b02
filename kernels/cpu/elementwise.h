// Elementwise ops over flat float arrays (OpenMP).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace osprey::cpu {

void relu_forward(int64_t n, const float* x, float* y);
// Uses the saved output: dx = dy where y > 0.
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);

// Inverted dropout. The keep mask is a pure function of (seed, offset + i), so a run is
// reproducible whatever the thread count. mask[i] = 1 keeps, 0 drops.
void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y,
                     uint8_t* mask);
void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx);

void fill(int64_t n, float value, float* y);
void add(int64_t n, const float* a, const float* b, float* y);  // y = a + b
void axpy(int64_t n, float alpha, const float* x, float* y);    // y += alpha * x
void scale(int64_t n, float alpha, float* y);                   // y *= alpha
double sum_squares(int64_t n, const float* x);                  // sum x^2 in double

// bf16 storage (kernels/bf16.h): float arithmetic, one rounding per stored value.
void cast(int64_t n, const float* x, bf16* y);
void cast(int64_t n, const bf16* x, float* y);
void add(int64_t n, const bf16* a, const bf16* b, bf16* y);
void axpy(int64_t n, float alpha, const bf16* x, bf16* y);

}  // namespace osprey::cpu
