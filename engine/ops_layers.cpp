// Ops with parameters: conv2d and linear.
#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/gemm.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/conv.h"
#include "kernels/cuda/depthwise.h"
#include "kernels/cuda/gemm.h"
#endif

namespace osprey::ops {
namespace {

// Every operand must be f32 and on the input's device.
void check_operand(const Tensor& x, const Tensor& t, const char* op, const char* what) {
  OSPREY_CHECK(t.dtype() == DType::f32 && t.device() == x.device(), op, ": ", what,
               " must be f32 on ", device_name(x.device()), " (the input's device), got ",
               dtype_name(t.dtype()), " on ", device_name(t.device()));
}

const float* data_or_null(const Tensor& t) {
  return t.defined() ? t.ptr<float>() : nullptr;
}

class Conv2dNode : public autograd::Node {
 public:
  explicit Conv2dNode(Conv2dShape s) : s_(s) {}
  const char* name() const override { return "conv2d"; }
  void backward() override {
    const Tensor &x = inputs[0], &w = inputs[1], &b = inputs[2];
    const float* dy = outputs[0].grad().ptr<float>();
    Tensor dx;
    if (x.requires_grad()) dx = autograd::grad_overwrite_target(x);
    float* dw = w.requires_grad() ? autograd::grad_accumulate_target(w) : nullptr;
    float* db = b.defined() && b.requires_grad() ? autograd::grad_accumulate_target(b) : nullptr;
    OSPREY_DISPATCH(x.device(), conv2d_backward, s_, x.ptr<float>(), w.ptr<float>(), dy,
                    dx.defined() ? dx.ptr<float>() : nullptr, dw, db);
    if (dx.defined()) autograd::commit_grad(x, dx);
  }

 private:
  Conv2dShape s_;
};

class DepthwiseConv2dNode : public autograd::Node {
 public:
  explicit DepthwiseConv2dNode(DepthwiseShape s) : s_(s) {}
  const char* name() const override { return "depthwise_conv2d"; }
  void backward() override {
    const Tensor &x = inputs[0], &w = inputs[1], &b = inputs[2];
    Tensor dx;
    if (x.requires_grad()) dx = autograd::grad_overwrite_target(x);
    float* dw = w.requires_grad() ? autograd::grad_accumulate_target(w) : nullptr;
    float* db = b.defined() && b.requires_grad() ? autograd::grad_accumulate_target(b) : nullptr;
    OSPREY_DISPATCH(x.device(), depthwise_conv2d_backward, s_, x.ptr<float>(), w.ptr<float>(),
                    outputs[0].grad().ptr<float>(), dx.defined() ? dx.ptr<float>() : nullptr, dw,
                    db);
    if (dx.defined()) autograd::commit_grad(x, dx);
  }

 private:
  DepthwiseShape s_;
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
    OSPREY_DISPATCH(x.device(), linear_backward, n, in, out, x.ptr<float>(), w.ptr<float>(),
                    outputs[0].grad().ptr<float>(), dx.defined() ? dx.ptr<float>() : nullptr, dw,
                    db);
    if (dx.defined()) autograd::commit_grad(x, dx);
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int pad) {
  profiler::Scope profile("forward conv2d");
  check_operand(x, x, "conv2d", "input");
  check_operand(x, w, "conv2d", "weight");
  if (bias.defined()) check_operand(x, bias, "conv2d", "bias");
  OSPREY_CHECK(x.ndim() == 4 && w.ndim() == 4, "conv2d: input ", shape_str(x.shape()),
               " and weight ", shape_str(w.shape()), " must both be 4-D (NHWC, KHWC)");
  OSPREY_CHECK(w.dim(3) == x.dim(3), "conv2d: weight ", shape_str(w.shape()), " expects ", w.dim(3),
               " input channels, input ", shape_str(x.shape()), " has ", x.dim(3));
  OSPREY_CHECK(stride >= 1 && pad >= 0, "conv2d: bad stride ", stride, " or padding ", pad);
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(0), "conv2d: bias ", shape_str(bias.shape()), " for ",
                 w.dim(0), " output channels");
  Conv2dShape s;
  s.n = int(x.dim(0)), s.h = int(x.dim(1)), s.w = int(x.dim(2)), s.c = int(x.dim(3));
  s.k = int(w.dim(0)), s.kh = int(w.dim(1)), s.kw = int(w.dim(2));
  s.stride = stride, s.pad = pad;
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "conv2d: input ", shape_str(x.shape()),
               " is smaller than the kernel ", s.kh, "x", s.kw, " with padding ", pad);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.k}, DType::f32, x.device());
  OSPREY_DISPATCH(x.device(), conv2d_forward, s, x.ptr<float>(), w.ptr<float>(), data_or_null(bias),
                  y.ptr<float>());
  if (autograd::should_record({&x, &w, &bias})) {
    auto node = std::make_unique<Conv2dNode>(s);
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int pad) {
  profiler::Scope profile("forward depthwise_conv2d");
  check_operand(x, x, "depthwise_conv2d", "input");
  check_operand(x, w, "depthwise_conv2d", "weight");
  if (bias.defined()) check_operand(x, bias, "depthwise_conv2d", "bias");
  OSPREY_CHECK(x.ndim() == 4 && w.ndim() == 3, "depthwise_conv2d: input ", shape_str(x.shape()),
               " and weight ", shape_str(w.shape()), " must be NHWC and KH,KW,C");
  OSPREY_CHECK(w.dim(2) == x.dim(3), "depthwise_conv2d: weight ", shape_str(w.shape()), " is for ",
               w.dim(2), " channels, input ", shape_str(x.shape()), " has ", x.dim(3));
  OSPREY_CHECK(stride >= 1 && pad >= 0, "depthwise_conv2d: bad stride ", stride, " or padding ",
               pad);
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(2), "depthwise_conv2d: bias ", shape_str(bias.shape()),
                 " for ", w.dim(2), " channels");
  DepthwiseShape s{int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)),
                   int(w.dim(0)), int(w.dim(1)), stride,        pad};
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "depthwise_conv2d: input ", shape_str(x.shape()),
               " is smaller than the kernel ", s.kh, "x", s.kw, " with padding ", pad);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.c}, DType::f32, x.device());
  OSPREY_DISPATCH(x.device(), depthwise_conv2d_forward, s, x.ptr<float>(), w.ptr<float>(),
                  data_or_null(bias), y.ptr<float>());
  if (autograd::should_record({&x, &w, &bias})) {
    auto node = std::make_unique<DepthwiseConv2dNode>(s);
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  profiler::Scope profile("forward linear");
  check_operand(x, x, "linear", "input");
  check_operand(x, w, "linear", "weight");
  if (bias.defined()) check_operand(x, bias, "linear", "bias");
  OSPREY_CHECK(x.ndim() == 2 && w.ndim() == 2 && x.dim(1) == w.dim(1), "linear: input ",
               shape_str(x.shape()), " does not match weight ", shape_str(w.shape()),
               " ([out, in])");
  if (bias.defined())
    OSPREY_CHECK(bias.numel() == w.dim(0), "linear: bias ", shape_str(bias.shape()), " for ",
                 w.dim(0), " outputs");
  int n = int(x.dim(0)), in = int(x.dim(1)), out = int(w.dim(0));
  Tensor y = Tensor::empty({n, out}, DType::f32, x.device());
  OSPREY_DISPATCH(x.device(), linear_forward, n, in, out, x.ptr<float>(), w.ptr<float>(),
                  data_or_null(bias), y.ptr<float>());
  if (autograd::should_record({&x, &w, &bias})) {
    auto node = std::make_unique<LinearNode>();
    node->inputs = {x, w, bias};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

}  // namespace osprey::ops
