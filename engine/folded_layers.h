// Inference forms of the coarse MobileNetV2 layers: BatchNorm's running statistics folded into
// the convolution before it (w' = w * gamma / sqrt(var + eps), b' = beta - mean * that scale),
// so a layer is one convolution with a bias and an activation. An inverted-residual block then
// runs its depthwise and projection stages as one fused kernel. No autograd: these are for
// eval, predict and serve, and hold copies of the weights taken when they were folded.
#pragma once
#include <vector>

#include "engine/conv_bn_act.h"

namespace osprey {

struct FoldedConvAct {
  ConvKind kind = ConvKind::dense;
  Tensor weight;  // as ConvBnAct::weight, scaled per output channel
  Tensor bias;    // [K]
  int stride = 1, pad = 0;
  Activation act = Activation::none;
};

struct FoldedInvertedResidual {
  std::vector<FoldedConvAct> expand;  // the 1x1 expansion, when the block has one
  FoldedConvAct depthwise;
  Tensor project_weight;  // [C][K]: input-major, as the fused kernel reads it
  Tensor project_bias;    // [K]
  bool residual = false;
};

// On the layer's device.
FoldedConvAct fold_batchnorm(const ConvBnAct& layer);
// The block must be [expand 1x1,] depthwise, project 1x1 without activation (MobileNetV2's).
FoldedInvertedResidual fold_batchnorm(const InvertedResidual& block);

namespace ops {

// Equal to conv_bn_act(x, layer, false) and inverted_residual(x, block, false) up to float
// rounding, without recording anything.
Tensor folded_conv_act(const Tensor& x, const FoldedConvAct& layer);
Tensor folded_inverted_residual(const Tensor& x, const FoldedInvertedResidual& block);

}  // namespace ops
}  // namespace osprey
