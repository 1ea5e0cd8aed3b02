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

// Same size, device and dtype; f32, or also bf16 where the op has a bf16 kernel.
void check_same(const Tensor& a, const Tensor& b, const char* op, bool bf16_too = false) {
  const bool dtype_ok = a.dtype() == DType::f32 || (bf16_too && a.dtype() == DType::bf16);
  OSPREY_CHECK(
      a.numel() == b.numel() && a.device() == b.device() && dtype_ok && b.dtype() == a.dtype(), op,
      ": ", shape_str(a.shape()), " ", dtype_name(a.dtype()), " on ", device_name(a.device()),
      " and ", shape_str(b.shape()), " ", dtype_name(b.dtype()), " on ", device_name(b.device()),
      " do not match");
}

}  // namespace

void fill(const Tensor& y, float value) {
  OSPREY_DISPATCH(y.device(), fill, y.numel(), value, y.ptr<float>());
}

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  check_same(a, b, "add", true);
  check_same(a, y, "add", true);
  if (y.dtype() == DType::bf16)
    OSPREY_DISPATCH(y.device(), add, y.numel(), a.ptr<bf16>(), b.ptr<bf16>(), y.ptr<bf16>());
  else
    OSPREY_DISPATCH(y.device(), add, y.numel(), a.ptr<float>(), b.ptr<float>(), y.ptr<float>());
}

void axpy(float alpha, const Tensor& x, const Tensor& y) {
  check_same(x, y, "axpy", true);
  if (y.dtype() == DType::bf16)
    OSPREY_DISPATCH(y.device(), axpy, y.numel(), alpha, x.ptr<bf16>(), y.ptr<bf16>());
  else
    OSPREY_DISPATCH(y.device(), axpy, y.numel(), alpha, x.ptr<float>(), y.ptr<float>());
}

void cast(const Tensor& x, const Tensor& y) {
  OSPREY_CHECK(x.numel() == y.numel() && x.device() == y.device(), "cast: ", shape_str(x.shape()),
               " on ", device_name(x.device()), " into ", shape_str(y.shape()), " on ",
               device_name(y.device()));
  if (x.dtype() == y.dtype()) {
    y.copy_from(x);
  } else if (x.dtype() == DType::f32 && y.dtype() == DType::bf16) {
    OSPREY_DISPATCH(y.device(), cast, y.numel(), x.ptr<float>(), y.ptr<bf16>());
  } else if (x.dtype() == DType::bf16 && y.dtype() == DType::f32) {
    OSPREY_DISPATCH(y.device(), cast, y.numel(), x.ptr<bf16>(), y.ptr<float>());
  } else {
    fail("cast: ", dtype_name(x.dtype()), " to ", dtype_name(y.dtype()), " is not supported");
  }
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
