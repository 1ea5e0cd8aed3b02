#include "engine/param_store.h"

#include <cstring>

#include "engine/profiler.h"

namespace osprey {
namespace {

constexpr int64_t kAlignFloats = 16;  // 64 bytes

// Calls fn(our_index, torch_index) for every element of p.
template <typename Fn>
void for_each_torch_index(const Parameter& p, Fn fn) {
  const Shape& s = p.value.shape();
  switch (p.layout) {
    case TorchLayout::same:
      for (int64_t i = 0; i < p.value.numel(); ++i) fn(i, i);
      break;
    case TorchLayout::conv_ohwi: {
      int64_t K = s[0], KH = s[1], KW = s[2], C = s[3];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t y = 0; y < KH; ++y)
          for (int64_t x = 0; x < KW; ++x)
            for (int64_t c = 0; c < C; ++c)
              fn(((k * KH + y) * KW + x) * C + c, ((k * C + c) * KH + y) * KW + x);
      break;
    }
    case TorchLayout::linear_hwc_input: {
      int64_t out = s[0], C = p.input_chw[0], H = p.input_chw[1], W = p.input_chw[2];
      for (int64_t o = 0; o < out; ++o)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c)
              fn(o * H * W * C + (y * W + x) * C + c, o * C * H * W + (c * H + y) * W + x);
      break;
    }
    case TorchLayout::depthwise_hwc: {
      int64_t KH = s[0], KW = s[1], C = s[2];
      for (int64_t y = 0; y < KH; ++y)
        for (int64_t x = 0; x < KW; ++x)
          for (int64_t c = 0; c < C; ++c) fn((y * KW + x) * C + c, (c * KH + y) * KW + x);
      break;
    }
  }
}

}  // namespace

Shape Parameter::torch_shape() const {
  const Shape& s = value.shape();
  if (layout == TorchLayout::conv_ohwi) return {s[0], s[3], s[1], s[2]};
  if (layout == TorchLayout::depthwise_hwc) return {s[2], 1, s[0], s[1]};
  return s;
}

void Parameter::to_torch(const float* ours, float* out) const {
  for_each_torch_index(*this, [&](int64_t o, int64_t t) { out[t] = ours[o]; });
}

void Parameter::from_torch(const float* in, float* ours) const {
  for_each_torch_index(*this, [&](int64_t o, int64_t t) { ours[o] = in[t]; });
}

Tensor ParamStore::add(const std::string& name, const Shape& shape, TorchLayout layout,
                       const Shape& input_chw) {
  OSPREY_CHECK(!finalized(), "ParamStore: cannot add '", name, "' after finalize()");
  OSPREY_CHECK(find(name) == nullptr && find_buffer(name) == nullptr,
               "ParamStore: duplicate parameter name '", name, "'");
  if (layout == TorchLayout::conv_ohwi)
    OSPREY_CHECK(shape.size() == 4, "ParamStore: conv weight '", name, "' must be 4-D");
  if (layout == TorchLayout::depthwise_hwc)
    OSPREY_CHECK(shape.size() == 3, "ParamStore: depthwise weight '", name, "' must be 3-D");
  if (layout == TorchLayout::linear_hwc_input)
    OSPREY_CHECK(shape.size() == 2 && input_chw.size() == 3 && shape_numel(input_chw) == shape[1],
                 "ParamStore: '", name, "' input C,H,W ", shape_str(input_chw),
                 " does not match its shape ", shape_str(shape));
  Parameter p;
  p.name = name;
  p.value = Tensor::unbound(shape);
  p.layout = layout;
  p.input_chw = input_chw;
  p.offset = flat_size_;
  flat_size_ += (shape_numel(shape) + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  params_.push_back(p);
  return p.value;
}

void ParamStore::finalize() {
  OSPREY_CHECK(!finalized(), "ParamStore: finalize() called twice");
  flat_data_ = Tensor::zeros({flat_size_});
  flat_grad_ = Tensor::zeros({flat_size_});
  for (Parameter& p : params_) {
    size_t bytes = size_t(p.offset) * sizeof(float);
    p.value.bind(flat_data_.impl().storage, bytes);
    Tensor grad = Tensor::unbound(p.value.shape());
    grad.bind(flat_grad_.impl().storage, bytes);
    p.value.set_grad(grad);
    p.value.set_requires_grad(true);
  }
}

const Parameter* ParamStore::find(const std::string& name) const {
  for (const Parameter& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

Tensor ParamStore::add_buffer(const std::string& name, const Shape& shape, DType dtype) {
  OSPREY_CHECK(find(name) == nullptr && find_buffer(name) == nullptr,
               "ParamStore: duplicate buffer name '", name, "'");
  buffers_.push_back(Buffer{name, Tensor::zeros(shape, dtype)});
  return buffers_.back().value;
}

const Buffer* ParamStore::find_buffer(const std::string& name) const {
  for (const Buffer& b : buffers_)
    if (b.name == name) return &b;
  return nullptr;
}

int64_t ParamStore::num_elements() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.value.numel();
  return n;
}

void ParamStore::zero_grad() {
  OSPREY_CHECK(finalized(), "ParamStore: zero_grad() before finalize()");
  profiler::Scope profile("zero_grad");
  flat_grad_.fill_zero();
}

void ParamStore::to(Device device) {
  OSPREY_CHECK(finalized(), "ParamStore: to() before finalize()");
  if (device == this->device()) return;
  Tensor data = flat_data_.to(device), grad = flat_grad_.to(device);
  // Rebinding the shared TensorImpls moves every handle at once (a model's members alias them).
  auto rebind = [device](const Tensor& t, const Tensor& flat) {
    t.impl().storage = flat.impl().storage;
    t.impl().device = device;
  };
  for (Parameter& p : params_) {
    rebind(p.value, data);
    rebind(p.value.grad(), grad);
  }
  flat_data_ = data;
  flat_grad_ = grad;
  for (Buffer& b : buffers_) {
    if (b.value.dtype() != DType::f32) continue;
    Tensor moved = b.value.to(device);
    b.value.impl().storage = moved.impl().storage;
    b.value.impl().offset = 0;
    b.value.impl().device = device;
  }
}

void ParamStore::set_grad_ready_hook(std::function<void(int)> hook) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (hook)
      params_[i].value.impl().grad_ready_hook = [hook, i] { hook(int(i)); };
    else
      params_[i].value.impl().grad_ready_hook = nullptr;
  }
}

}  // namespace osprey
