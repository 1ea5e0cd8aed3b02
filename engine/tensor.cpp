#include "engine/tensor.h"

#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "kernels/cpu/elementwise.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace osprey {

int64_t shape_numel(const Shape& s) {
  // Shapes come from files too: a product past int64 would be signed-overflow UB.
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n)) fail("shape ", shape_str(s), " has too many elements");
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Tensor Tensor::unbound(const Shape& shape, DType dtype) {
  for (int64_t d : shape) OSPREY_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  // nbytes() multiplies unchecked, so a tensor whose byte size does not fit is never made.
  int64_t bytes = 0;
  OSPREY_CHECK(!__builtin_mul_overflow(shape_numel(shape), int64_t(dtype_size(dtype)), &bytes),
               "shape ", shape_str(shape), " of ", dtype_name(dtype), " is too large");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t = unbound(shape, dtype);
  t.impl().device = device;
  t.impl().storage = Storage::allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero();
  return t;
}

void Tensor::fill_zero() const {
  if (device() == Device::cuda) {
#ifdef OSPREY_WITH_CUDA
    cuda::memset_device(raw(), 0, nbytes());
#endif
    return;
  }
  std::memset(raw(), 0, nbytes());
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

Tensor Tensor::from_data(const Shape& shape, const std::vector<float>& values) {
  OSPREY_CHECK(shape_numel(shape) == int64_t(values.size()), "from_data: shape ", shape_str(shape),
               " needs ", shape_numel(shape), " values, got ", values.size());
  Tensor t = empty(shape);
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_labels(const std::vector<int64_t>& labels) {
  Tensor t = empty({int64_t(labels.size())}, DType::i64);
  std::memcpy(t.raw(), labels.data(), t.nbytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  if (i < 0) i += n;
  OSPREY_CHECK(i >= 0 && i < n, "dimension ", i, " out of range for shape ", shape_str(shape()));
  return impl().shape[size_t(i)];
}

void* Tensor::raw() const {
  const TensorImpl& t = impl();
  OSPREY_CHECK(t.storage != nullptr, "tensor of shape ", shape_str(t.shape), " has no storage");
  return static_cast<char*>(t.storage->data()) + t.offset;
}

Tensor Tensor::view(const Shape& shape) const {
  OSPREY_CHECK(shape_numel(shape) == numel(), "cannot view ", shape_str(this->shape()), " as ",
               shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->offset = this->impl().offset;
  impl->shape = shape;
  impl->dtype = dtype();
  impl->device = device();
  return Tensor(std::move(impl));
}

Tensor Tensor::rows(int64_t begin, int64_t count) const {
  OSPREY_CHECK(ndim() >= 1 && begin >= 0 && count >= 0 && begin + count <= dim(0), "rows [", begin,
               ", ", begin + count, ") of a tensor of shape ", shape_str(shape()));
  Shape s = shape();
  s[0] = count;
  Tensor t = view(shape());
  int64_t row_bytes = dim(0) ? int64_t(nbytes()) / dim(0) : 0;
  t.impl().shape = s;
  t.impl().offset += size_t(begin * row_bytes);
  return t;
}

void Tensor::bind(std::shared_ptr<Storage> storage, size_t offset) const {
  OSPREY_CHECK(storage && offset + nbytes() <= storage->bytes(), "bind: tensor of ", nbytes(),
               " bytes does not fit at offset ", offset);
  impl().storage = std::move(storage);
  impl().offset = offset;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor t = empty(shape(), dtype(), target);
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_vector() const {
  const Tensor host = to(Device::cpu);
  if (dtype() == DType::bf16) {
    std::vector<float> v(static_cast<size_t>(numel()));
    cpu::cast(numel(), host.data<bf16>(), v.data());
    return v;
  }
  const float* p = host.data<float>();
  return std::vector<float>(p, p + numel());
}

void Tensor::copy_from(const Tensor& src) const {
  OSPREY_CHECK(src.numel() == numel() && src.dtype() == dtype(),
               "copy_from: ", shape_str(src.shape()), " ", dtype_name(src.dtype()), " into ",
               shape_str(shape()), " ", dtype_name(dtype()));
  if (device() == Device::cpu && src.device() == Device::cpu) {
    std::memmove(raw(), src.raw(), nbytes());
    return;
  }
#ifdef OSPREY_WITH_CUDA
  if (device() == Device::cuda && src.device() == Device::cuda)
    cuda::copy_on_device(raw(), src.raw(), nbytes());
  else if (device() == Device::cuda)
    cuda::copy_to_device(raw(), src.raw(), nbytes());
  else
    cuda::copy_to_host(raw(), src.raw(), nbytes());
#else
  fail("copy_from: this osprey was built without CUDA");
#endif
}

Tensor& Tensor::set_requires_grad(bool on) {
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  return Tensor(impl().grad);
}

void Tensor::set_grad(const Tensor& g) const {
  impl().grad = g.impl_ptr();
}

void Tensor::zero_grad() const {
  impl().grad.reset();
}

void Tensor::backward() const {
  autograd::backward(*this);
}

}  // namespace osprey
