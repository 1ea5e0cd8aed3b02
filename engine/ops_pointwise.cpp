// Parameter-free ops: activations, softmax, pooling, dropout, reshapes, addition.
#include <algorithm>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/flat_ops.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/pool.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/pool.h"
#endif

namespace osprey::ops {
namespace {

void check_f32(const Tensor& t, const char* op) {
  OSPREY_CHECK(t.dtype() == DType::f32, op, ": input must be f32, got ", dtype_name(t.dtype()));
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

// Records a node whose single input gets an overwritten gradient computed by fn(node, dy, dx).
// fn reads saved outputs from the node: holding them in the closure would form a cycle.
template <typename Fn>
void record_unary(const char* name, const Tensor& x, const Tensor& y, Fn fn) {
  auto backward = [fn](autograd::Node& node) {
    const Tensor& in = node.inputs[0];
    if (!in.requires_grad()) return;
    Tensor dx = autograd::grad_overwrite_target(in);
    fn(node, node.outputs[0].grad(), dx);
    autograd::commit_grad(in, dx);
  };
  auto node = std::make_unique<LambdaNode<decltype(backward)>>(name, backward);
  node->inputs = {x};
  node->outputs = {y};
  autograd::record(std::move(node));
}

using RowKernel = void (*)(int64_t rows, int64_t cols, const float* in, float* out);
using RowBackward = void (*)(int64_t rows, int64_t cols, const float* y, const float* dy,
                             float* dx);

// Softmax or log-softmax over the last dimension: rows are everything before it.
Tensor last_dim_softmax(const Tensor& x, const char* name, RowKernel forward,
                        RowBackward backward) {
  check_f32(x, name);
  OSPREY_CHECK(x.ndim() >= 1, name, ": a 0-D tensor has no last dimension");
  OSPREY_CHECK(x.device() == Device::cpu, name,
               ": Osprey has no CUDA kernel for it; copy the tensor to the host first "
               "(x.to(Device::cpu))");
  const int64_t cols = x.dim(x.ndim() - 1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  forward(rows, cols, x.ptr<float>(), y.ptr<float>());
  if (autograd::should_record({&x}))
    record_unary(name, x, y,
                 [rows, cols, backward](autograd::Node& node, const Tensor& dy, const Tensor& dx) {
                   backward(rows, cols, node.outputs[0].ptr<float>(), dy.ptr<float>(),
                            dx.ptr<float>());
                 });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) {
  profiler::Scope profile("forward softmax");
  return last_dim_softmax(x, "softmax", cpu::softmax_forward, cpu::softmax_backward);
}

Tensor log_softmax(const Tensor& x) {
  profiler::Scope profile("forward log_softmax");
  return last_dim_softmax(x, "log_softmax", cpu::log_softmax_forward, cpu::log_softmax_backward);
}

Tensor relu(const Tensor& x) {
  profiler::Scope profile("forward relu");
  check_f32(x, "relu");
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  int64_t n = x.numel();
  OSPREY_DISPATCH(x.device(), relu_forward, n, x.ptr<float>(), y.ptr<float>());
  if (autograd::should_record({&x}))
    record_unary("relu", x, y, [n](autograd::Node& node, const Tensor& dy, const Tensor& dx) {
      OSPREY_DISPATCH(dx.device(), relu_backward, n, node.outputs[0].ptr<float>(), dy.ptr<float>(),
                      dx.ptr<float>());
    });
  return y;
}

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad) {
  profiler::Scope profile("forward max_pool2d");
  check_f32(x, "max_pool2d");
  OSPREY_CHECK(x.ndim() == 4, "max_pool2d: input ", shape_str(x.shape()), " is not NHWC");
  OSPREY_CHECK(kernel >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= kernel,
               "max_pool2d: bad kernel ", kernel, ", stride ", stride, " or padding ", pad);
  Pool2dShape s;
  s.n = int(x.dim(0)), s.h = int(x.dim(1)), s.w = int(x.dim(2)), s.c = int(x.dim(3));
  s.kh = s.kw = kernel, s.stride = stride, s.pad = pad;
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "max_pool2d: input ", shape_str(x.shape()),
               " is smaller than the window ", kernel);
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), s.c}, DType::f32, x.device());
  Tensor argmax = Tensor::empty(y.shape(), DType::i32, x.device());
  OSPREY_DISPATCH(x.device(), maxpool2d_forward, s, x.ptr<float>(), y.ptr<float>(),
                  argmax.ptr<int32_t>());
  if (autograd::should_record({&x}))
    record_unary("max_pool2d", x, y,
                 [s, argmax](autograd::Node&, const Tensor& dy, const Tensor& dx) {
                   OSPREY_DISPATCH(dx.device(), maxpool2d_backward, s, dy.ptr<float>(),
                                   argmax.ptr<int32_t>(), dx.ptr<float>());
                 });
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  profiler::Scope profile("forward global_avg_pool");
  OSPREY_CHECK(x.ndim() == 4 && x.dtype() == DType::f32, "global_avg_pool: input ",
               shape_str(x.shape()), " is not an f32 NHWC batch");
  const int n = int(x.dim(0)), hw = int(x.dim(1) * x.dim(2)), c = int(x.dim(3));
  Tensor y = Tensor::empty({n, c}, DType::f32, x.device());
  OSPREY_DISPATCH(x.device(), global_avg_pool_forward, n, hw, c, x.ptr<float>(), y.ptr<float>());
  if (autograd::should_record({&x}))
    record_unary("global_avg_pool", x, y,
                 [n, hw, c](autograd::Node&, const Tensor& dy, const Tensor& dx) {
                   OSPREY_DISPATCH(dx.device(), global_avg_pool_backward, n, hw, c, dy.ptr<float>(),
                                   dx.ptr<float>());
                 });
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, Rng& rng) {
  profiler::Scope profile("forward dropout");
  check_f32(x, "dropout");
  OSPREY_CHECK(p >= 0.0f && p <= 1.0f, "dropout: probability ", p, " is not in [0, 1]");
  if (!training || p == 0.0f) return x;
  int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  Tensor mask = Tensor::empty(x.shape(), DType::u8, x.device());
  OSPREY_DISPATCH(x.device(), dropout_forward, n, p, rng.seed(), rng.reserve(uint64_t(n)),
                  x.ptr<float>(), y.ptr<float>(), mask.ptr<uint8_t>());
  if (autograd::should_record({&x}))
    record_unary("dropout", x, y,
                 [n, p, mask](autograd::Node&, const Tensor& dy, const Tensor& dx) {
                   OSPREY_DISPATCH(dx.device(), dropout_backward, n, p, mask.ptr<uint8_t>(),
                                   dy.ptr<float>(), dx.ptr<float>());
                 });
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = x.view(shape);
  if (autograd::should_record({&x}))
    record_unary("reshape", x, y,
                 [](autograd::Node&, const Tensor& dy, const Tensor& dx) { dx.copy_from(dy); });
  return y;
}

Tensor flatten(const Tensor& x) {
  OSPREY_CHECK(x.ndim() >= 1, "flatten: a 0-D tensor has no batch dimension");
  return reshape(x, {x.dim(0), x.numel() / std::max<int64_t>(x.dim(0), 1)});
}

Tensor add(const Tensor& a, const Tensor& b) {
  profiler::Scope profile("forward add");
  check_f32(a, "add");
  check_f32(b, "add");
  OSPREY_CHECK(a.shape() == b.shape(), "add: shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), " differ");
  Tensor y = Tensor::empty(a.shape(), DType::f32, a.device());
  flat::add(a, b, y);
  if (autograd::should_record({&a, &b})) {
    auto backward = [](autograd::Node& node) {
      const Tensor dy = node.outputs[0].grad();
      for (const Tensor& in : node.inputs) {
        if (!in.requires_grad()) continue;
        autograd::grad_accumulate_target(in);
        flat::axpy(1.0f, dy, in.grad());
      }
    };
    auto node = std::make_unique<LambdaNode<decltype(backward)>>("add", backward);
    node->inputs = {a, b};
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  profiler::Scope profile("forward cast");
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  flat::cast(x, y);
  if (autograd::should_record({&x}))
    record_unary("cast", x, y,
                 [](autograd::Node&, const Tensor& dy, const Tensor& dx) { flat::cast(dy, dx); });
  return y;
}

}  // namespace osprey::ops
