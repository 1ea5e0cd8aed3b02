// Coarse layers: convolution (dense or depthwise, no bias) + BatchNorm + activation as one
// autograd node, and a chain of such layers with an optional identity skip (a residual block)
// as one node. One node per layer or block keeps the tape short and lets backward run the fused
// BatchNorm+activation kernels.
#pragma once
#include <memory>
#include <vector>

#include "engine/batch_norm.h"
#include "engine/tensor.h"
#include "kernels/types.h"

namespace osprey {

enum class ConvKind { dense, depthwise };

// The tensors and settings of one conv + BN + activation layer, as a model holds them.
struct ConvBnAct {
  ConvKind kind = ConvKind::dense;
  Tensor weight;  // dense [K][KH][KW][C]; depthwise [KH][KW][C]
  int stride = 1, pad = 0;
  Tensor gamma, beta;                                     // parameters [K]
  Tensor running_mean, running_var, num_batches_tracked;  // buffers
  Activation act = Activation::relu6;
  float momentum = 0.1f, eps = 1e-5f;
  std::shared_ptr<const BatchNormSync> sync;  // null: this process's batch only
};

// Layers applied in order; with residual the chain's input is added to its output (the shapes
// must agree).
struct ConvBnActChain {
  std::vector<ConvBnAct> layers;
  bool residual = false;
  // Keep only the conv outputs of the inner layers for backward and recompute their activated
  // outputs (the inputs of the next layers) from them when backward needs them: one extra
  // BN+activation pass per inner layer in backward for the memory of those outputs, the widest
  // tensors of an expanding block. Gradients are bit-identical.
  bool recompute_hidden = false;
};

// The layer's BatchNorm + activation as ops::batch_norm takes it (the same tensors).
BatchNorm batch_norm_of(const ConvBnAct& layer);

namespace ops {

// Training mode normalises with batch statistics and updates the running ones (PyTorch's
// momentum and unbiased running variance); eval mode uses the running statistics.
Tensor conv_bn_act(const Tensor& x, const ConvBnAct& layer, bool training);
Tensor conv_bn_act_chain(const Tensor& x, const ConvBnActChain& chain, bool training);

}  // namespace ops
}  // namespace osprey
