#include "models/inverted_residual.h"

namespace osprey::models {

FoldedInvertedResidual fold_inverted_residual(const InvertedResidual& block) {
  const size_t n = block.layers.size();
  OSPREY_CHECK(n == 2 || n == 3, "fold_inverted_residual: an inverted-residual block has 2 or 3 ",
               "layers, got ", n);
  FoldedInvertedResidual out;
  if (n == 3) out.expand.push_back(fold_batchnorm(block.layers[0]));
  out.depthwise_project = fold_batchnorm(block.layers[n - 2], block.layers[n - 1]);
  out.residual = block.residual;
  return out;
}

Tensor folded_inverted_residual(const Tensor& x, const FoldedInvertedResidual& block) {
  Tensor h = x;
  for (const FoldedConvAct& l : block.expand) h = ops::folded_conv_act(h, l);
  return ops::folded_depthwise_separable(h, block.depthwise_project, block.residual ? x : Tensor());
}

}  // namespace osprey::models
