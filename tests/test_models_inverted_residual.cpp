// MobileNetV2's inverted-residual block folded for inference (BatchNorm in the convolutions,
// depthwise + projection fused) against the block's training graph in eval mode.
#include <catch2/catch.hpp>
#include <string>

#include "engine/autograd.h"
#include "models/inverted_residual.h"
#include "tests/block_fixture.h"

using namespace osprey;
using models::fold_inverted_residual;
using models::folded_inverted_residual;
using tests::random_layer;
using tests::random_tensor;

TEST_CASE("a folded, fused inverted-residual block equals the block in eval mode") {
  autograd::NoGradGuard no_grad;
  Rng rng(12);
  for (int stride : {1, 2})
    for (bool expand : {true, false}) {
      models::InvertedResidual block = tests::random_block(6, 4, stride, rng);
      if (!expand)  // MobileNetV2's first block: depthwise + project on the input width
        block.layers = {random_layer(ConvKind::depthwise, 6, 6, 3, stride, Activation::relu6, rng),
                        random_layer(ConvKind::dense, 6, 6, 1, 1, Activation::none, rng)};
      for (ConvBnAct& l : block.layers) tests::spread_statistics(l, rng);
      const Tensor x = random_tensor({2, 11, 10, 6}, rng, 1.0);
      tests::require_same(folded_inverted_residual(x, fold_inverted_residual(block)),
                          ops::conv_bn_act_chain(x, block, false),
                          "block stride " + std::to_string(stride) +
                              (expand ? " with" : " without") + " expansion" +
                              (block.residual ? ", residual" : ""));
    }
}

TEST_CASE("folding refuses blocks that are not inverted residuals") {
  Rng rng(13);
  const models::InvertedResidual block = tests::random_block(4, 2, 1, rng);
  models::InvertedResidual one_layer = block;
  one_layer.layers.resize(1);
  REQUIRE_THROWS_WITH(fold_inverted_residual(one_layer), Catch::Contains("2 or 3 layers"));
  models::InvertedResidual act_project = block;
  act_project.layers.back().act = Activation::relu6;
  REQUIRE_THROWS_WITH(fold_inverted_residual(act_project), Catch::Contains("1x1 projection"));
  const models::FoldedInvertedResidual folded = fold_inverted_residual(block);
  REQUIRE_THROWS_WITH(folded_inverted_residual(random_tensor({1, 5, 5, 3}, rng, 1.0), folded),
                      Catch::Contains("channels"));
}
