// One forward of BatchNorm + activation and what its backward needs, shared by the batch_norm,
// conv_bn_act and conv_bn_act_chain nodes. Activations are f32 or bf16; parameters, statistics
// and parameter gradients are always f32. Not part of the library's interface.
#pragma once
#include <utility>

#include "engine/autograd.h"
#include "engine/batch_norm.h"

namespace osprey {

class BatchNormRun {
 public:
  // y = act(BatchNorm(z)); keeps z and the statistics used (the batch's, across processes with
  // bn.sync, or the running ones in eval mode).
  Tensor forward(const BatchNorm& bn, const Tensor& z, bool training);
  // Accumulates the gradients of gamma and beta and writes dz (skipped when undefined).
  void backward(const BatchNorm& bn, const Tensor& dy, const Tensor& dz);
  // The forward's output again, from the saved input and statistics: the same kernel on the
  // same values, so bit-identical.
  Tensor recompute_output(const BatchNorm& bn) const;
  const Tensor& input() const { return z_; }

 private:
  void apply(const BatchNorm& bn, const Tensor& y) const;
  void synchronize_statistics(const BatchNormSync& sync, int64_t m, int k);
  void synchronized_backward(const BatchNorm& bn, const Tensor& dy, const Tensor& dz, float* dgamma,
                             float* dbeta);

  Tensor z_, mean_, var_;
  bool training_ = true;
  int64_t total_m_ = 0;  // rows behind the statistics (all processes' with synchronized BN)
};

// The autograd node of one saved run of a layer (a BatchNormRun, a conv + BN run, ...):
// run.backward(layer, dy, dx) accumulates the layer's parameter gradients and writes the input
// gradient into dx, skipped (undefined dx) when the input wants none.
template <class Layer, class Run>
class SavedRunNode : public autograd::Node {
 public:
  SavedRunNode(const char* name, const Layer& layer, Run run)
      : name_(name), layer_(layer), run_(std::move(run)) {}
  const char* name() const override { return name_; }
  void backward() override {
    const Tensor& x = inputs[0];
    if (!x.requires_grad()) return run_.backward(layer_, outputs[0].grad(), Tensor());
    Tensor dx = autograd::grad_overwrite_target(x);
    run_.backward(layer_, outputs[0].grad(), dx);
    autograd::commit_grad(x, dx);
  }

 private:
  const char* name_;
  Layer layer_;
  Run run_;
};

}  // namespace osprey
