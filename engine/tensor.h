// Tensor: a shape, a dtype and a device over shared Storage. Activations are NHWC. A tensor is
// a cheap handle (shared_ptr to its TensorImpl): copies alias the same data and gradient.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/storage.h"
#include "kernels/error.h"

namespace osprey {

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;  // null until bound (parameters are bound by ParamStore)
  size_t offset = 0;                 // bytes into storage
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu;

  // Autograd. A leaf is a tensor the user marked as requiring grad (parameters, inputs);
  // outputs of recorded ops require grad but are not leaves.
  bool requires_grad = false;
  bool is_leaf = true;
  std::shared_ptr<TensorImpl> grad;
  std::function<void()> grad_ready_hook;  // leaves only: fired once its gradient is final
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_data(const Shape& shape, const std::vector<float>& values);
  static Tensor from_labels(const std::vector<int64_t>& labels);
  // A tensor without storage yet (bound later with bind()).
  static Tensor unbound(const Shape& shape, DType dtype = DType::f32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int ndim() const { return int(impl().shape.size()); }
  int64_t dim(int i) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }

  // Host access: the tensor must be on the cpu.
  template <typename T>
  T* data() const {
    OSPREY_CHECK(device() == Device::cpu, "a ", shape_str(shape()),
                 " tensor on cuda was read on the host (copy it with to(Device::cpu))");
    return ptr<T>();
  }
  // The data pointer on whichever device holds the tensor (for kernels of that device).
  template <typename T>
  T* ptr() const {
    OSPREY_CHECK(dtype() == dtype_of<T>::value, "tensor of dtype ", dtype_name(dtype()),
                 " accessed as ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }
  void* raw() const;

  // Same storage, new shape (numel must match). Not recorded by autograd: use ops::reshape.
  Tensor view(const Shape& shape) const;
  // Rows [begin, begin + count) of the first dimension, sharing this tensor's storage (a view:
  // not recorded by autograd).
  Tensor rows(int64_t begin, int64_t count) const;
  // Points this (unbound) tensor at storage + offset; every handle sees it.
  void bind(std::shared_ptr<Storage> storage, size_t offset) const;
  Tensor clone() const;
  // This tensor when it is already on `device`, otherwise a copy there (not recorded).
  Tensor to(Device device) const;
  std::vector<float> to_vector() const;     // f32 or bf16 (widened), from any device
  void copy_from(const Tensor& src) const;  // same numel and dtype, any devices
  void fill_zero() const;

  // Autograd.
  bool requires_grad() const { return defined() && impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;  // undefined when none was computed
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient (parameters are zeroed by their store instead)
  void backward() const;   // this must be a scalar (numel 1)

  TensorImpl& impl() const {
    OSPREY_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace osprey
