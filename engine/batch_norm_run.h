// One forward of BatchNorm + activation and what its backward needs, shared by the batch_norm,
// conv_bn_act and conv_bn_act_chain nodes. Activations are f32 or bf16; parameters, statistics
// and parameter gradients are always f32. Not part of the library's interface.
#pragma once
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

}  // namespace osprey
