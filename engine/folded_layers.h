// Inference forms of the conv + BN + activation layers: BatchNorm's running statistics folded
// into the convolution before it (w' = w * gamma / sqrt(var + eps), b' = beta - mean * that
// scale), so a layer is one convolution with a bias and an activation; and a depthwise layer
// followed by a 1x1 layer without activation (a depthwise-separable convolution) as one fused
// kernel. No autograd: these are for eval, predict and serve, and hold copies of the weights
// taken when they were folded.
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

struct FoldedDepthwiseSeparable {
  FoldedConvAct depthwise;
  Tensor pointwise_weight;  // [C][K]: input-major, as the fused kernel reads it
  Tensor pointwise_bias;    // [K]
};

// On the layer's device.
FoldedConvAct fold_batchnorm(const ConvBnAct& layer);
// depthwise: a depthwise layer; pointwise: a 1x1 dense layer of stride 1 without activation.
FoldedDepthwiseSeparable fold_batchnorm(const ConvBnAct& depthwise, const ConvBnAct& pointwise);

namespace ops {

// Equal to conv_bn_act(x, layer, false) up to float rounding, without recording anything.
Tensor folded_conv_act(const Tensor& x, const FoldedConvAct& layer);
// The pointwise layer applied to the depthwise layer's output, plus skip when it is defined (of
// the output's shape), in one pass that never writes the depthwise output to memory.
Tensor folded_depthwise_separable(const Tensor& x, const FoldedDepthwiseSeparable& layers,
                                  const Tensor& skip = Tensor());

}  // namespace ops
}  // namespace osprey
