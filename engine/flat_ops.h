// Whole-tensor arithmetic on tensors of any device, treating each as a flat array (not
// recorded by autograd): gradient accumulation, optimizer helpers, residual sums.
#pragma once
#include "engine/tensor.h"

namespace osprey::flat {

void fill(const Tensor& y, float value);
// add and axpy also take bf16 tensors (float arithmetic, one rounding per value).
void add(const Tensor& a, const Tensor& b, const Tensor& y);  // y = a + b
void axpy(float alpha, const Tensor& x, const Tensor& y);     // y += alpha * x
// y = x converted to y's dtype (f32 <-> bf16, round to nearest even), same device.
void cast(const Tensor& x, const Tensor& y);
void scale(float alpha, const Tensor& y);  // y *= alpha
double sum_squares(const Tensor& x);       // in double

}  // namespace osprey::flat
