#include "engine/conv_bn_act.h"

#include "engine/autograd.h"
#include "engine/batch_norm_run.h"
#include "engine/dispatch.h"
#include "engine/flat_ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/elementwise.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/conv.h"
#include "kernels/cuda/depthwise.h"
#endif

namespace osprey {

BatchNorm batch_norm_of(const ConvBnAct& l) {
  BatchNorm bn;
  bn.gamma = l.gamma, bn.beta = l.beta;
  bn.running_mean = l.running_mean, bn.running_var = l.running_var;
  bn.num_batches_tracked = l.num_batches_tracked;
  bn.act = l.act, bn.momentum = l.momentum, bn.eps = l.eps, bn.sync = l.sync;
  return bn;
}

namespace {

// One forward of a ConvBnAct layer and what its backward needs: the input, and the
// BatchNorm's run over the raw conv output.
class ConvBnActRun {
 public:
  Tensor forward(const ConvBnAct& l, const Tensor& x, bool training) {
    OSPREY_CHECK(x.ndim() == 4 && (x.dtype() == DType::f32 || x.dtype() == DType::bf16),
                 "conv_bn_act: input ", shape_str(x.shape()), " ", dtype_name(x.dtype()),
                 " is not an f32 or bf16 NHWC batch");
    x_ = x;
    x_shape_ = x.shape();
    const Device device = x.device();
    OSPREY_CHECK(l.weight.device() == device && l.gamma.device() == device,
                 "conv_bn_act: input on ", device_name(device),
                 " but the layer's parameters are on ", device_name(l.weight.device()));
    const Tensor z = l.kind == ConvKind::dense ? dense_forward(l, x) : depthwise_forward(l, x);
    return bn_.forward(batch_norm_of(l), z, training);
  }

  // Accumulates the layer's parameter gradients and writes the input gradient into dx
  // (skipped when undefined; the input's dtype).
  void backward(const ConvBnAct& l, const Tensor& dy, const Tensor& dx) {
    const Tensor& z = bn_.input();
    const Device device = z.device();
    OSPREY_CHECK(!dx.defined() || dx.dtype() == z.dtype(), "conv_bn_act backward: gradient of ",
                 "dtype ", dtype_name(dx.dtype()), " for activations of dtype ",
                 dtype_name(z.dtype()));
    Tensor dz = Tensor::empty(z.shape(), z.dtype(), device);
    bn_.backward(batch_norm_of(l), dy, dz);
    float* dw = autograd::grad_accumulate_target(l.weight);
    profiler::Scope profile(l.kind == ConvKind::depthwise ? "backward depthwise"
                            : dense_.kh == 1              ? "backward conv 1x1"
                                                          : "backward conv");
    with_storage_type(z.dtype(), [&](auto t) {
      using T = decltype(t);
      T* dxp = dx.defined() ? dx.ptr<T>() : nullptr;
      if (l.kind == ConvKind::dense)
        OSPREY_DISPATCH(device, conv2d_backward, dense_, x_.ptr<T>(), l.weight.ptr<float>(),
                        dz.ptr<T>(), dxp, dw, nullptr);
      else
        OSPREY_DISPATCH(device, depthwise_conv2d_backward, dw_, x_.ptr<T>(), l.weight.ptr<float>(),
                        dz.ptr<T>(), dxp, dw, nullptr);
    });
  }

  const Shape& input_shape() const { return x_shape_; }
  Tensor recompute_output(const ConvBnAct& l) const {
    return bn_.recompute_output(batch_norm_of(l));
  }
  // Activation memory: a block drops the tensors it can recompute once its forward is done.
  void drop_input() { x_ = Tensor(); }
  void set_input(const Tensor& x) { x_ = x; }

 private:
  Tensor dense_forward(const ConvBnAct& l, const Tensor& x) {
    const int n = int(x.dim(0)), h = int(x.dim(1)), w = int(x.dim(2)), c = int(x.dim(3));
    OSPREY_CHECK(l.weight.dim(3) == c, "conv_bn_act: weight ", shape_str(l.weight.shape()),
                 " expects ", l.weight.dim(3), " channels, input has ", c);
    dense_ = Conv2dShape{
        n,        h,    w, c, int(l.weight.dim(0)), int(l.weight.dim(1)), int(l.weight.dim(2)),
        l.stride, l.pad};
    OSPREY_CHECK(dense_.oh() > 0 && dense_.ow() > 0, "conv_bn_act: input ", shape_str(x.shape()),
                 " is too small for the kernel");
    Tensor z = Tensor::empty({n, dense_.oh(), dense_.ow(), dense_.k}, x.dtype(), x.device());
    profiler::Scope profile(dense_.kh == 1 ? "forward conv 1x1" : "forward conv");
    with_storage_type(x.dtype(), [&](auto t) {
      using T = decltype(t);
      OSPREY_DISPATCH(x.device(), conv2d_forward, dense_, x.ptr<T>(), l.weight.ptr<float>(),
                      nullptr, z.ptr<T>());
    });
    return z;
  }

  Tensor depthwise_forward(const ConvBnAct& l, const Tensor& x) {
    const int n = int(x.dim(0)), h = int(x.dim(1)), w = int(x.dim(2)), c = int(x.dim(3));
    OSPREY_CHECK(l.weight.dim(2) == c, "conv_bn_act: depthwise weight ",
                 shape_str(l.weight.shape()), " is for ", l.weight.dim(2), " channels, input has ",
                 c);
    dw_ = DepthwiseShape{n, h, w, c, int(l.weight.dim(0)), int(l.weight.dim(1)), l.stride, l.pad};
    OSPREY_CHECK(dw_.oh() > 0 && dw_.ow() > 0, "conv_bn_act: input ", shape_str(x.shape()),
                 " is too small for the kernel");
    Tensor z = Tensor::empty({n, dw_.oh(), dw_.ow(), c}, x.dtype(), x.device());
    profiler::Scope profile("forward depthwise");
    with_storage_type(x.dtype(), [&](auto t) {
      using T = decltype(t);
      OSPREY_DISPATCH(x.device(), depthwise_conv2d_forward, dw_, x.ptr<T>(), l.weight.ptr<float>(),
                      nullptr, z.ptr<T>());
    });
    return z;
  }

  Tensor x_;
  Shape x_shape_;
  BatchNormRun bn_;
  Conv2dShape dense_;
  DepthwiseShape dw_;
};

void add_layer_inputs(std::vector<Tensor>& inputs, const ConvBnAct& l) {
  inputs.push_back(l.weight);
  inputs.push_back(l.gamma);
  inputs.push_back(l.beta);
}

class ConvBnActChainNode : public autograd::Node {
 public:
  ConvBnActChainNode(const ConvBnActChain& block, std::vector<ConvBnActRun> runs)
      : block_(block), runs_(std::move(runs)) {}
  const char* name() const override { return "conv_bn_act_chain"; }
  void backward() override {
    const Tensor& x = inputs[0];
    Tensor dy = outputs[0].grad();
    Tensor g = dy;
    for (size_t i = runs_.size(); i-- > 1;) {
      if (block_.recompute_hidden) {
        Tensor h = runs_[i - 1].recompute_output(block_.layers[i - 1]);
        runs_[i].set_input(h);
      }
      Tensor dx = Tensor::empty(runs_[i].input_shape(), x.dtype(), x.device());
      runs_[i].backward(block_.layers[i], g, dx);
      if (block_.recompute_hidden) runs_[i].drop_input();
      g = dx;
    }
    if (!x.requires_grad()) {
      runs_[0].backward(block_.layers[0], g, Tensor());
      return;
    }
    Tensor dx = autograd::grad_overwrite_target(x);
    runs_[0].backward(block_.layers[0], g, dx);
    if (block_.residual) flat::axpy(1.0f, dy, dx);
    autograd::commit_grad(x, dx);
  }

 private:
  ConvBnActChain block_;
  std::vector<ConvBnActRun> runs_;
};

}  // namespace

namespace ops {

Tensor conv_bn_act(const Tensor& x, const ConvBnAct& layer, bool training) {
  profiler::Scope profile("forward conv_bn_act");
  ConvBnActRun run;
  Tensor y = run.forward(layer, x, training);
  if (autograd::should_record({&x, &layer.weight, &layer.gamma, &layer.beta})) {
    auto node = std::make_unique<SavedRunNode<ConvBnAct, ConvBnActRun>>("conv_bn_act", layer,
                                                                        std::move(run));
    node->inputs = {x};
    add_layer_inputs(node->inputs, layer);
    node->outputs = {y};
    autograd::record(std::move(node));
  }
  return y;
}

Tensor conv_bn_act_chain(const Tensor& x, const ConvBnActChain& block, bool training) {
  profiler::Scope profile("forward conv_bn_act_chain");
  OSPREY_CHECK(!block.layers.empty(), "conv_bn_act_chain: no layers");
  std::vector<ConvBnActRun> runs(block.layers.size());
  Tensor h = x;
  for (size_t i = 0; i < block.layers.size(); ++i)
    h = runs[i].forward(block.layers[i], h, training);
  if (block.recompute_hidden)
    for (size_t i = 1; i < runs.size(); ++i) runs[i].drop_input();
  if (block.residual) {
    OSPREY_CHECK(h.shape() == x.shape(), "conv_bn_act_chain: skip connection from ",
                 shape_str(x.shape()), " to ", shape_str(h.shape()));
    flat::axpy(1.0f, x, h);  // h is the project layer's fresh output: nothing else reads it
  }
  bool record = autograd::should_record({&x});
  for (const ConvBnAct& l : block.layers)
    record = record || autograd::should_record({&l.weight, &l.gamma, &l.beta});
  if (record) {
    auto node = std::make_unique<ConvBnActChainNode>(block, std::move(runs));
    node->inputs = {x};
    for (const ConvBnAct& l : block.layers) add_layer_inputs(node->inputs, l);
    node->outputs = {h};
    autograd::record(std::move(node));
  }
  return h;
}

}  // namespace ops
}  // namespace osprey
