#include "engine/conv_bn_act.h"

#include <algorithm>
#include <optional>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dispatch.h"
#include "engine/flat_ops.h"
#include "engine/profiler.h"
#include "engine/storage.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/elementwise.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/depthwise.h"
#endif

namespace osprey {
namespace {

// Calls fn(float{}) or fn(bf16{}) for the activations' storage type.
template <typename Fn>
void with_storage_type(DType dtype, Fn&& fn) {
  if (dtype == DType::bf16)
    fn(bf16{});
  else
    fn(float{});
}

// One forward of a ConvBnAct layer and what its backward needs: the input, the raw conv
// output z, the activated output y and the statistics used. Activations are f32 or bf16 (all
// of one run the same); parameters, statistics and parameter gradients are always f32.
class ConvBnActRun {
 public:
  Tensor forward(const ConvBnAct& l, const Tensor& x, bool training) {
    OSPREY_CHECK(x.ndim() == 4 && (x.dtype() == DType::f32 || x.dtype() == DType::bf16),
                 "conv_bn_act: input ", shape_str(x.shape()), " ", dtype_name(x.dtype()),
                 " is not an f32 or bf16 NHWC batch");
    OSPREY_CHECK(!(l.sync && x.dtype() == DType::bf16),
                 "synchronized BatchNorm is implemented for f32 activations only");
    x_ = x;
    x_shape_ = x.shape();
    training_ = training;
    const Device device = x.device();
    OSPREY_CHECK(l.weight.device() == device && l.gamma.device() == device,
                 "conv_bn_act: input on ", device_name(device),
                 " but the layer's parameters are on ", device_name(l.weight.device()));
    int n = int(x.dim(0)), h = int(x.dim(1)), w = int(x.dim(2)), c = int(x.dim(3));
    if (l.kind == ConvKind::dense) {
      OSPREY_CHECK(l.weight.dim(3) == c, "conv_bn_act: weight ", shape_str(l.weight.shape()),
                   " expects ", l.weight.dim(3), " channels, input has ", c);
      dense_ = Conv2dShape{
          n,        h,    w, c, int(l.weight.dim(0)), int(l.weight.dim(1)), int(l.weight.dim(2)),
          l.stride, l.pad};
      OSPREY_CHECK(dense_.oh() > 0 && dense_.ow() > 0, "conv_bn_act: input ", shape_str(x.shape()),
                   " is too small for the kernel");
      z_ = Tensor::empty({n, dense_.oh(), dense_.ow(), dense_.k}, x.dtype(), device);
      profiler::Scope profile(dense_.kh == 1 ? "forward conv 1x1" : "forward conv");
      with_storage_type(x.dtype(), [&](auto t) {
        using T = decltype(t);
        OSPREY_DISPATCH(device, conv2d_forward, dense_, x.ptr<T>(), l.weight.ptr<float>(), nullptr,
                        z_.ptr<T>());
      });
    } else {
      OSPREY_CHECK(l.weight.dim(2) == c, "conv_bn_act: depthwise weight ",
                   shape_str(l.weight.shape()), " is for ", l.weight.dim(2),
                   " channels, input has ", c);
      dw_ = DepthwiseShape{n, h, w, c, int(l.weight.dim(0)), int(l.weight.dim(1)), l.stride, l.pad};
      OSPREY_CHECK(dw_.oh() > 0 && dw_.ow() > 0, "conv_bn_act: input ", shape_str(x.shape()),
                   " is too small for the kernel");
      z_ = Tensor::empty({n, dw_.oh(), dw_.ow(), c}, x.dtype(), device);
      profiler::Scope profile("forward depthwise");
      with_storage_type(x.dtype(), [&](auto t) {
        using T = decltype(t);
        OSPREY_DISPATCH(device, depthwise_conv2d_forward, dw_, x.ptr<T>(), l.weight.ptr<float>(),
                        nullptr, z_.ptr<T>());
      });
    }
    int k = int(z_.dim(3));
    int64_t m = z_.numel() / k;
    if (training) {
      OSPREY_CHECK(m > 1, "conv_bn_act: BatchNorm in training mode needs more than one value ",
                   "per channel, got input ", shape_str(x.shape()));
      profiler::Scope profile("forward batchnorm statistics");
      mean_ = Tensor::empty({k}, DType::f32, device);
      var_ = Tensor::empty({k}, DType::f32, device);
      with_storage_type(z_.dtype(), [&](auto t) {
        using T = decltype(t);
        OSPREY_DISPATCH(device, batchnorm_stats, m, k, z_.ptr<T>(), mean_.ptr<float>(),
                        var_.ptr<float>());
      });
      total_m_ = m;
      if (l.sync) synchronize_statistics(*l.sync, m, k);
      OSPREY_DISPATCH(device, batchnorm_update_running, total_m_, k, mean_.ptr<float>(),
                      var_.ptr<float>(), l.momentum, l.running_mean.ptr<float>(),
                      l.running_var.ptr<float>());
      if (l.num_batches_tracked.defined()) l.num_batches_tracked.data<int64_t>()[0] += 1;
    } else {
      mean_ = l.running_mean;
      var_ = l.running_var;
    }
    Tensor y = Tensor::empty(z_.shape(), z_.dtype(), device);
    profiler::Scope profile("forward batchnorm+act");
    apply_batchnorm_act(l, y);
    // The backward recomputes the activation mask from z_: only the consumer of the output (the
    // next layer's input) keeps it alive.
    return y;
  }

  // Accumulates the layer's parameter gradients and writes the input gradient into dx
  // (skipped when undefined; the input's dtype).
  void backward(const ConvBnAct& l, const Tensor& dy, const Tensor& dx) {
    int k = int(z_.dim(3));
    int64_t m = z_.numel() / k;
    const Device device = z_.device();
    OSPREY_CHECK(dy.dtype() == z_.dtype() && (!dx.defined() || dx.dtype() == z_.dtype()),
                 "conv_bn_act backward: gradients of dtype ", dtype_name(dy.dtype()),
                 " for activations of dtype ", dtype_name(z_.dtype()));
    Tensor dz = Tensor::empty(z_.shape(), z_.dtype(), device);
    float* dgamma = autograd::grad_accumulate_target(l.gamma);
    float* dbeta = autograd::grad_accumulate_target(l.beta);
    std::optional<profiler::Scope> profile(std::in_place, "backward batchnorm+act");
    if (l.sync && training_)
      synchronized_backward(*l.sync, l, m, k, dy, dz, dgamma, dbeta);
    else
      with_storage_type(z_.dtype(), [&](auto t) {
        using T = decltype(t);
        OSPREY_DISPATCH(device, batchnorm_act_backward, m, k, z_.ptr<T>(), dy.ptr<T>(),
                        mean_.ptr<float>(), var_.ptr<float>(), l.gamma.ptr<float>(),
                        l.beta.ptr<float>(), l.eps, l.act, training_, dz.ptr<T>(), dgamma, dbeta);
      });
    profile.reset();
    float* dw = autograd::grad_accumulate_target(l.weight);
    profile.emplace(l.kind == ConvKind::depthwise ? "backward depthwise"
                    : dense_.kh == 1              ? "backward conv 1x1"
                                                  : "backward conv");
    with_storage_type(z_.dtype(), [&](auto t) {
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

  // The forward's output again, from the saved conv output and the statistics the forward used:
  // the same kernel on the same values, so bit-identical.
  Tensor recompute_output(const ConvBnAct& l) const {
    profiler::Scope profile("backward recompute batchnorm+act");
    Tensor y = Tensor::empty(z_.shape(), z_.dtype(), z_.device());
    apply_batchnorm_act(l, y);
    return y;
  }
  // Activation memory: a block drops the tensors it can recompute once its forward is done.
  void drop_input() { x_ = Tensor(); }
  void set_input(const Tensor& x) { x_ = x; }

 private:
  void apply_batchnorm_act(const ConvBnAct& l, const Tensor& y) const {
    const int k = int(z_.dim(3));
    with_storage_type(z_.dtype(), [&](auto t) {
      using T = decltype(t);
      OSPREY_DISPATCH(z_.device(), batchnorm_act_forward, z_.numel() / k, k, z_.ptr<T>(),
                      mean_.ptr<float>(), var_.ptr<float>(), l.gamma.ptr<float>(),
                      l.beta.ptr<float>(), l.eps, l.act, y.ptr<T>());
    });
  }

  // The backward in its two halves with the cross-process sum between them (f32 only: the
  // forward refuses synchronized BatchNorm on bf16). The sums go through the host, where the
  // communicator's callback takes them.
  void synchronized_backward(const BatchNormSync& sync, const ConvBnAct& l, int64_t m, int k,
                             const Tensor& dy, const Tensor& dz, float* dgamma, float* dbeta) {
    const Device device = z_.device();
    auto sums_storage = Storage::allocate(2 * size_t(k) * sizeof(double), device);
    double* sums = static_cast<double*>(sums_storage->data());
    OSPREY_DISPATCH(device, batchnorm_act_backward_sums, m, k, z_.ptr<float>(), dy.ptr<float>(),
                    mean_.ptr<float>(), var_.ptr<float>(), l.gamma.ptr<float>(),
                    l.beta.ptr<float>(), l.eps, l.act, sums, dgamma, dbeta);
    std::vector<double> host(2 * size_t(k));
    copy_bytes(host.data(), sums, host.size() * sizeof(double));
    sync.allreduce_sum(host.data(), int64_t(host.size()));
    copy_bytes(sums, host.data(), host.size() * sizeof(double));
    OSPREY_DISPATCH(device, batchnorm_act_backward_dx, m, k, z_.ptr<float>(), dy.ptr<float>(),
                    mean_.ptr<float>(), var_.ptr<float>(), l.gamma.ptr<float>(),
                    l.beta.ptr<float>(), l.eps, l.act, sums, total_m_, dz.ptr<float>());
  }

  // Turns this process's mean and biased variance over m rows into those of every process's
  // rows: per-channel sums of x and x^2 and the row count, summed across processes (on the
  // host: 2k + 1 numbers).
  void synchronize_statistics(const BatchNormSync& sync, int64_t m, int k) {
    std::vector<float> mean_host = mean_.to_vector(), var_host = var_.to_vector();
    float* mean = mean_host.data();
    float* var = var_host.data();
    std::vector<double> s(2 * size_t(k) + 1);
    for (int j = 0; j < k; ++j) {
      s[size_t(j)] = double(mean[j]) * double(m);
      s[size_t(k + j)] = (double(var[j]) + double(mean[j]) * mean[j]) * double(m);
    }
    s[2 * size_t(k)] = double(m);
    sync.allreduce_sum(s.data(), int64_t(s.size()));
    total_m_ = int64_t(s[2 * size_t(k)]);
    for (int j = 0; j < k; ++j) {
      double mu = s[size_t(j)] / double(total_m_);
      mean[j] = float(mu);
      var[j] = float(std::max(0.0, s[size_t(k + j)] / double(total_m_) - mu * mu));
    }
    mean_.copy_from(Tensor::from_data({k}, mean_host));
    var_.copy_from(Tensor::from_data({k}, var_host));
  }

 private:
  Tensor x_, z_, mean_, var_;
  Shape x_shape_;
  bool training_ = true;
  int64_t total_m_ = 0;  // rows behind the statistics (all processes' with synchronized BN)
  Conv2dShape dense_;
  DepthwiseShape dw_;
};

void add_layer_inputs(std::vector<Tensor>& inputs, const ConvBnAct& l) {
  inputs.push_back(l.weight);
  inputs.push_back(l.gamma);
  inputs.push_back(l.beta);
}

class ConvBnActNode : public autograd::Node {
 public:
  ConvBnActNode(const ConvBnAct& layer, ConvBnActRun run) : layer_(layer), run_(std::move(run)) {}
  const char* name() const override { return "conv_bn_act"; }
  void backward() override {
    const Tensor& x = inputs[0];
    if (!x.requires_grad()) {
      run_.backward(layer_, outputs[0].grad(), Tensor());
      return;
    }
    Tensor dx = autograd::grad_overwrite_target(x);
    run_.backward(layer_, outputs[0].grad(), dx);
    autograd::commit_grad(x, dx);
  }

 private:
  ConvBnAct layer_;
  ConvBnActRun run_;
};

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
    auto node = std::make_unique<ConvBnActNode>(layer, std::move(run));
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
