// Parameter-free ops: activations, pooling, dropout, reshapes, addition.
#include <algorithm>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/pool.h"

namespace osprey::ops {
namespace {

void check_f32(const Tensor& t, const char* op) {
  OSPREY_CHECK(t.dtype() == DType::f32 && t.device() == Device::cpu, op,
               ": input must be f32 on cpu, got ", dtype_name(t.dtype()));
}

template <typename Backward>
class LambdaNode : public autograd::Node {
 public:
  LambdaNode(const char* name, Backward fn) : name_(name), fn_(std::move(fn)) {}
  const char* name() const override { return name_; }
  void backward() override { fn_(*this); }

 private:
  const char* name_;
  Backward fn_;
};

// Records a node whose single input gets an overwritten gradient computed by fn(dy, dx).
template <typename Fn>
void record_unary(const char* name, const Tensor& x, const Tensor& y, Fn fn) {
  auto backward = [fn](autograd::Node& node) {
    const Tensor& in = node.inputs[0];
    if (!in.requires_grad()) return;
    Tensor dx = autograd::grad_overwrite_target(in);
    fn(node.outputs[0].grad().data<float>(), dx.data<float>());
    autograd::commit_grad(in, dx);
  };
  auto node = std::make_unique<LambdaNode<decltype(backward)>>(name, backward);
  node->inputs = {x};
  node->outputs = {y};
  autograd::record(std::move(node));
}

}  // namespace

Tensor relu(const Tensor& x) {
  check_f32(x, "relu");
  Tensor y = Tensor::empty(x.shape());
  int64_t n = x.numel();
  cpu::relu_forward(n, x.data<float>(), y.data<float>());
  if (autograd::should_record({&x})) {
    // Holding y inside the closure would form a cycle with outputs; read it from the node.
    auto backward = [n](autograd::Node& node) {
      const Tensor& in = node.inputs[0];
      if (!in.requires_grad()) return;
      Tensor dx = autograd::grad_overwrite_target(in);
      cpu::relu_backward(n, node.outputs[0].data<float>(), node.outputs[0].grad().data<float>(),
                         dx.data<float>());
      autograd::commit_grad(in, dx);
    };
    auto node = std::make_unique<LambdaNode<decltype(backward)>>("relu", backward);
    node->inputs = {x};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad) {
  check_f32(x, "max_pool2d");
  OSPREY_CHECK(x.ndim() == 4, "max_pool2d: input ", shape_str(x.shape()), " is not NHWC");
  OSPREY_CHECK(kernel >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= kernel,
               "max_pool2d: bad kernel ", kernel, ", stride ", stride, " or padding ", pad);
  cpu::Pool2dShape s;
  s.n = int(x.dim(0)), s.h = int(x.dim(1)), s.w = int(x.dim(2)), s.c = int(x.dim(3));
  s.kh = s.kw = kernel, s.stride = stride, s.pad = pad;
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "max_pool2d: input ", shape_str(x.shape()),
               " is smaller than the window ", kernel);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.c});
  auto argmax = std::make_shared<std::vector<int32_t>>(size_t(y.numel()));
  cpu::maxpool2d_forward(s, x.data<float>(), y.data<float>(), argmax->data());
  if (autograd::should_record({&x}))
    record_unary("max_pool2d", x, y, [s, argmax](const float* dy, float* dx) {
      cpu::maxpool2d_backward(s, dy, argmax->data(), dx);
    });
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, Rng& rng) {
  check_f32(x, "dropout");
  OSPREY_CHECK(p >= 0.0f && p <= 1.0f, "dropout: probability ", p, " is not in [0, 1]");
  if (!training || p == 0.0f) return x;
  int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape());
  auto mask = std::make_shared<std::vector<uint8_t>>(size_t(n));
  cpu::dropout_forward(n, p, rng.seed(), rng.reserve(uint64_t(n)), x.data<float>(), y.data<float>(),
                       mask->data());
  if (autograd::should_record({&x}))
    record_unary("dropout", x, y, [n, p, mask](const float* dy, float* dx) {
      cpu::dropout_backward(n, p, mask->data(), dy, dx);
    });
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = x.view(shape);
  if (autograd::should_record({&x})) {
    int64_t n = x.numel();
    record_unary("reshape", x, y, [n](const float* dy, float* dx) { std::copy(dy, dy + n, dx); });
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  OSPREY_CHECK(x.ndim() >= 1, "flatten: a 0-D tensor has no batch dimension");
  return reshape(x, {x.dim(0), x.numel() / std::max<int64_t>(x.dim(0), 1)});
}

Tensor add(const Tensor& a, const Tensor& b) {
  check_f32(a, "add");
  check_f32(b, "add");
  OSPREY_CHECK(a.shape() == b.shape(), "add: shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), " differ");
  Tensor y = Tensor::empty(a.shape());
  int64_t n = a.numel();
  cpu::add(n, a.data<float>(), b.data<float>(), y.data<float>());
  if (autograd::should_record({&a, &b})) {
    auto backward = [n](autograd::Node& node) {
      const float* dy = node.outputs[0].grad().data<float>();
      for (const Tensor& in : node.inputs) {
        if (!in.requires_grad()) continue;
        cpu::axpy(n, 1.0f, dy, autograd::grad_accumulate_target(in));
      }
    };
    auto node = std::make_unique<LambdaNode<decltype(backward)>>("add", backward);
    node->inputs = {a, b};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

}  // namespace osprey::ops
