// All parameters of a model in one flat fp32 buffer and all gradients in another; each parameter
// is a named view (torchvision names). The optimizer, gradient buckets, broadcasts and
// checkpoints each make one pass over the flat buffers.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace osprey {

// How a parameter's internal layout maps to PyTorch's, for state_dict import and export.
enum class TorchLayout {
  same,              // identical (biases, linear weights on an unflattened input)
  conv_ohwi,         // ours [K][KH][KW][C], PyTorch's [K][C][KH][KW]
  linear_hwc_input,  // ours [out][H*W*C] (NHWC flatten), PyTorch's [out][C*H*W]
  depthwise_hwc,     // ours [KH][KW][C], PyTorch's [C][1][KH][KW]
};

struct Parameter {
  std::string name;
  Tensor value;  // a view into ParamStore::flat_data()
  TorchLayout layout = TorchLayout::same;
  Shape input_chw;     // C, H, W of the flattened input, for linear_hwc_input
  int64_t offset = 0;  // in floats, into the flat buffers

  Shape torch_shape() const;
  // Copies to / from PyTorch's layout (a buffer of value.numel() floats).
  void to_torch(float* out) const { to_torch(value.data<float>(), out); }
  void from_torch(const float* in) const { from_torch(in, value.data<float>()); }
  void grad_to_torch(float* out) const { to_torch(value.grad().data<float>(), out); }
  // The same conversion for any tensor laid out like this parameter (optimizer state).
  void to_torch(const float* ours, float* out) const;
  void from_torch(const float* in, float* ours) const;
};

// Named state that is not trained (BatchNorm running statistics, num_batches_tracked): saved
// and loaded with the parameters, never touched by the optimizer.
struct Buffer {
  std::string name;
  Tensor value;
};

class ParamStore {
 public:
  ParamStore() = default;
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // Declares a parameter; its tensor is usable after finalize().
  Tensor add(const std::string& name, const Shape& shape, TorchLayout layout = TorchLayout::same,
             const Shape& input_chw = {});
  // Allocates the flat buffers (each parameter 64-byte aligned, gaps zero) and binds the views.
  void finalize();
  bool finalized() const { return flat_data_.defined(); }

  // Declares a buffer; usable at once (zero-filled).
  Tensor add_buffer(const std::string& name, const Shape& shape, DType dtype = DType::f32);

  const std::vector<Parameter>& params() const { return params_; }
  const std::vector<Buffer>& buffers() const { return buffers_; }
  const Parameter* find(const std::string& name) const;
  const Buffer* find_buffer(const std::string& name) const;
  int64_t flat_size() const { return flat_size_; }
  int64_t num_elements() const;  // sum of parameter sizes, without alignment gaps
  Tensor flat_data() const { return flat_data_; }
  Tensor flat_grad() const { return flat_grad_; }

  void zero_grad();
  // Moves parameters, gradients and f32 buffers to `device` (integer buffers such as
  // num_batches_tracked stay on the host); every tensor handle a model holds follows.
  void to(Device device);
  Device device() const { return finalized() ? flat_data_.device() : Device::cpu; }
  // Called with the parameter's index once backward has finished its gradient.
  void set_grad_ready_hook(std::function<void(int)> hook);

 private:
  std::vector<Parameter> params_;
  std::vector<Buffer> buffers_;
  int64_t flat_size_ = 0;
  Tensor flat_data_, flat_grad_;
};

}  // namespace osprey
