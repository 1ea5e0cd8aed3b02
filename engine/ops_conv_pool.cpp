// conv2d fused with max_pool2d for a first layer (see kernels/cpu/conv_pool.h).
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv_pool.h"

namespace osprey::ops {
namespace {

// Parameter gradients only: the op runs fused only when x needs no gradient.
class Conv2dMaxPool2dNode : public autograd::Node {
 public:
  Conv2dMaxPool2dNode(cpu::ConvPoolShape s, Tensor argmax) : s_(s), argmax_(std::move(argmax)) {}
  const char* name() const override { return "conv2d_max_pool2d"; }
  void backward() override {
    const Tensor &x = inputs[0], &w = inputs[1], &b = inputs[2];
    float* dw = w.requires_grad() ? autograd::grad_accumulate_target(w) : nullptr;
    float* db = b.defined() && b.requires_grad() ? autograd::grad_accumulate_target(b) : nullptr;
    cpu::conv2d_max_pool2d_backward(s_, x.ptr<float>(), outputs[0].grad().ptr<float>(),
                                    argmax_.ptr<uint8_t>(), dw, db);
  }

 private:
  cpu::ConvPoolShape s_;
  Tensor argmax_;
};

}  // namespace

Tensor conv2d_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& bias, int pad, int pool) {
  // The unfused ops serve what the fused kernel does not: an input gradient, and cuda tensors.
  if (x.requires_grad() || x.device() != Device::cpu)
    return max_pool2d(conv2d(x, w, bias, 1, pad), pool, pool);
  profiler::Scope profile("forward conv2d_max_pool2d");
  OSPREY_CHECK(
      x.dtype() == DType::f32 && w.dtype() == DType::f32 && w.device() == Device::cpu &&
          (!bias.defined() || (bias.dtype() == DType::f32 && bias.device() == Device::cpu)),
      "conv2d_max_pool2d: input, weight and bias must be f32 on cpu");
  OSPREY_CHECK(x.ndim() == 4 && w.ndim() == 4 && w.dim(3) == x.dim(3), "conv2d_max_pool2d: input ",
               shape_str(x.shape()), " and weight ", shape_str(w.shape()),
               " must be NHWC and KHWC with the same channels");
  OSPREY_CHECK(x.dim(3) <= cpu::kConvPoolMaxChannels, "conv2d_max_pool2d: input ",
               shape_str(x.shape()), " has ", x.dim(3),
               " channels, the fused kernel takes at most ", cpu::kConvPoolMaxChannels,
               "; use max_pool2d(conv2d(...))");
  OSPREY_CHECK(pad >= 0 && pool >= 1 && pool <= cpu::kConvPoolMaxWindow,
               "conv2d_max_pool2d: bad padding ", pad, " or pool ", pool, " (at most ",
               cpu::kConvPoolMaxWindow, ")");
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(0), "conv2d_max_pool2d: bias ", shape_str(bias.shape()),
                 " for ", w.dim(0), " output channels");
  cpu::ConvPoolShape s;
  s.n = int(x.dim(0)), s.h = int(x.dim(1)), s.w = int(x.dim(2)), s.c = int(x.dim(3));
  s.k = int(w.dim(0)), s.kh = int(w.dim(1)), s.kw = int(w.dim(2));
  s.pad = pad, s.pool = pool;
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "conv2d_max_pool2d: input ", shape_str(x.shape()),
               " is smaller than the kernel ", s.kh, "x", s.kw, " with padding ", pad,
               " and the pool window ", pool);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.k}, DType::f32);
  Tensor argmax = Tensor::empty(y.shape(), DType::u8);
  cpu::conv2d_max_pool2d_forward(s, x.ptr<float>(), w.ptr<float>(),
                                 bias.defined() ? bias.ptr<float>() : nullptr, y.ptr<float>(),
                                 argmax.ptr<uint8_t>());
  if (autograd::should_record({&w, &bias})) {
    auto node = std::make_unique<Conv2dMaxPool2dNode>(s, argmax);
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

}  // namespace osprey::ops
