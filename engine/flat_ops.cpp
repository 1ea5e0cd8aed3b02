#include "engine/flat_ops.h"

#include <memory>

#include "engine/device.h"
#include "engine/dispatch.h"
#include "kernels/cpu/elementwise.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#endif

namespace osprey::flat {
namespace {

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  OSPREY_CHECK(a.numel() == b.numel() && a.device() == b.device() && a.dtype() == DType::f32 &&
                   b.dtype() == DType::f32,
               op, ": ", shape_str(a.shape()), " f32 on ", device_name(a.device()), " and ",
               shape_str(b.shape()), " ", dtype_name(b.dtype()), " on ", device_name(b.device()),
               " do not match");
}

}  // namespace

void fill(const Tensor& y, float value) {
  OSPREY_DISPATCH(y.device(), fill, y.numel(), value, y.ptr<float>());
}

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  check_same(a, b, "add");
  check_same(a, y, "add");
  OSPREY_DISPATCH(y.device(), add, y.numel(), a.ptr<float>(), b.ptr<float>(), y.ptr<float>());
}

void axpy(float alpha, const Tensor& x, const Tensor& y) {
  check_same(x, y, "axpy");
  OSPREY_DISPATCH(y.device(), axpy, y.numel(), alpha, x.ptr<float>(), y.ptr<float>());
}

void scale(float alpha, const Tensor& y) {
  OSPREY_DISPATCH(y.device(), scale, y.numel(), alpha, y.ptr<float>());
}

double sum_squares(const Tensor& x) {
  if (x.device() == Device::cpu) return cpu::sum_squares(x.numel(), x.ptr<float>());
  std::shared_ptr<Storage> out = Storage::allocate(sizeof(double), Device::cuda);
  OSPREY_CUDA_CALL(sum_squares, x.numel(), x.ptr<float>(), static_cast<double*>(out->data()));
  double v = 0.0;
  copy_bytes(&v, out->data(), sizeof v);
  return v;
}

}  // namespace osprey::flat
