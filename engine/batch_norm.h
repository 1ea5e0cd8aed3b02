// BatchNorm over the channels (the last dimension) of an activation, with the activation that
// follows it fused into the same kernels, as a standalone op. Convolution layers that end in
// BatchNorm use engine/conv_bn_act.h, which runs the same code after the convolution.
#pragma once
#include <functional>
#include <memory>

#include "engine/tensor.h"
#include "kernels/types.h"

namespace osprey {

// Synchronized BatchNorm: training-mode statistics over the batches of every process of a
// data-parallel job. allreduce_sum replaces data[0, count) by its sum over the processes.
struct BatchNormSync {
  std::function<void(double* data, int64_t count)> allreduce_sum;
};

struct BatchNorm {
  Tensor gamma, beta;                                     // parameters [C]
  Tensor running_mean, running_var, num_batches_tracked;  // buffers ([C], [C], i64 scalar or none)
  Activation act = Activation::none;
  float momentum = 0.1f, eps = 1e-5f;
  std::shared_ptr<const BatchNormSync> sync;  // null: this process's batch only
};

namespace ops {

// act(BatchNorm(x)) for x [..., C] f32 or bf16 (NHWC, or [N, C]). Training mode normalises
// with the batch statistics and updates the running ones (PyTorch's momentum and unbiased
// running variance); eval mode uses the running statistics.
Tensor batch_norm(const Tensor& x, const BatchNorm& bn, bool training);

}  // namespace ops
}  // namespace osprey
