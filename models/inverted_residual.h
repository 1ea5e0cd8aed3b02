// MobileNetV2's inverted-residual block: [expand 1x1 (ReLU6),] depthwise 3x3 (ReLU6), project
// 1x1 (no activation), with a skip from the input when its stride is 1 and the widths agree.
// Training runs it as one engine conv_bn_act_chain node; inference folds BatchNorm into each
// convolution and runs the depthwise and projection layers as one fused depthwise-separable op.
#pragma once
#include <vector>

#include "engine/conv_bn_act.h"
#include "engine/folded_layers.h"

namespace osprey::models {

using InvertedResidual = ConvBnActChain;

struct FoldedInvertedResidual {
  std::vector<FoldedConvAct> expand;  // the 1x1 expansion, when the block has one
  FoldedDepthwiseSeparable depthwise_project;
  bool residual = false;
};

// On the block's device; refuses a block that is not [expand 1x1,] depthwise, project 1x1.
FoldedInvertedResidual fold_inverted_residual(const InvertedResidual& block);
// Equal to ops::conv_bn_act_chain(x, block, false) up to float rounding, recording nothing.
Tensor folded_inverted_residual(const Tensor& x, const FoldedInvertedResidual& block);

}  // namespace osprey::models
