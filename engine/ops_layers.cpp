// Ops with parameters: conv2d and linear.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/gemm.h"

namespace osprey::ops {
namespace {

void check_f32_cpu(const Tensor& t, const char* op, const char* what) {
  OSPREY_CHECK(t.dtype() == DType::f32 && t.device() == Device::cpu, op, ": ", what,
               " must be f32 on cpu, got ", dtype_name(t.dtype()), " on ", device_name(t.device()));
}

const float* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

class Conv2dNode : public autograd::Node {
 public:
  explicit Conv2dNode(cpu::Conv2dShape s) : s_(s) {}
  const char* name() const override { return "conv2d"; }
  void backward() override {
    const Tensor &x = inputs[0], &w = inputs[1], &b = inputs[2];
    const float* dy = outputs[0].grad().data<float>();
    Tensor dx;
    if (x.requires_grad()) dx = autograd::grad_overwrite_target(x);
    float* dw = w.requires_grad() ? autograd::grad_accumulate_target(w) : nullptr;
    float* db = b.defined() && b.requires_grad() ? autograd::grad_accumulate_target(b) : nullptr;
    cpu::conv2d_backward(s_, x.data<float>(), w.data<float>(), dy,
                         dx.defined() ? dx.data<float>() : nullptr, dw, db);
    if (dx.defined()) autograd::commit_grad(x, dx);
  }

 private:
  cpu::Conv2dShape s_;
};

class LinearNode : public autograd::Node {
 public:
  const char* name() const override { return "linear"; }
  void backward() override {
    const Tensor &x = inputs[0], &w = inputs[1], &b = inputs[2];
    int n = int(x.dim(0)), in = int(x.dim(1)), out = int(w.dim(0));
    Tensor dx;
    if (x.requires_grad()) dx = autograd::grad_overwrite_target(x);
    float* dw = w.requires_grad() ? autograd::grad_accumulate_target(w) : nullptr;
    float* db = b.defined() && b.requires_grad() ? autograd::grad_accumulate_target(b) : nullptr;
    cpu::linear_backward(n, in, out, x.data<float>(), w.data<float>(),
                         outputs[0].grad().data<float>(), dx.defined() ? dx.data<float>() : nullptr,
                         dw, db);
    if (dx.defined()) autograd::commit_grad(x, dx);
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int pad) {
  check_f32_cpu(x, "conv2d", "input");
  check_f32_cpu(w, "conv2d", "weight");
  OSPREY_CHECK(x.ndim() == 4 && w.ndim() == 4, "conv2d: input ", shape_str(x.shape()),
               " and weight ", shape_str(w.shape()), " must both be 4-D (NHWC, KHWC)");
  OSPREY_CHECK(w.dim(3) == x.dim(3), "conv2d: weight ", shape_str(w.shape()), " expects ", w.dim(3),
               " input channels, input ", shape_str(x.shape()), " has ", x.dim(3));
  OSPREY_CHECK(stride >= 1 && pad >= 0, "conv2d: bad stride ", stride, " or padding ", pad);
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(0), "conv2d: bias ", shape_str(bias.shape()), " for ",
                 w.dim(0), " output channels");
  cpu::Conv2dShape s;
  s.n = int(x.dim(0)), s.h = int(x.dim(1)), s.w = int(x.dim(2)), s.c = int(x.dim(3));
  s.k = int(w.dim(0)), s.kh = int(w.dim(1)), s.kw = int(w.dim(2));
  s.stride = stride, s.pad = pad;
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "conv2d: input ", shape_str(x.shape()),
               " is smaller than the kernel ", s.kh, "x", s.kw, " with padding ", pad);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.k});
  cpu::conv2d_forward(s, x.data<float>(), w.data<float>(), data_or_null(bias), y.data<float>());
  if (autograd::should_record({&x, &w, &bias})) {
    auto node = std::make_unique<Conv2dNode>(s);
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_f32_cpu(x, "linear", "input");
  check_f32_cpu(w, "linear", "weight");
  OSPREY_CHECK(x.ndim() == 2 && w.ndim() == 2 && x.dim(1) == w.dim(1), "linear: input ",
               shape_str(x.shape()), " does not match weight ", shape_str(w.shape()),
               " ([out, in])");
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(0), "linear: bias ", shape_str(bias.shape()), " for ",
                 w.dim(0), " outputs");
  int n = int(x.dim(0)), in = int(x.dim(1)), out = int(w.dim(0));
  Tensor y = Tensor::empty({n, out});
  cpu::linear_forward(n, in, out, x.data<float>(), w.data<float>(), data_or_null(bias),
                      y.data<float>());
  if (autograd::should_record({&x, &w, &bias})) {
    auto node = std::make_unique<LinearNode>();
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

}  // namespace osprey::ops
