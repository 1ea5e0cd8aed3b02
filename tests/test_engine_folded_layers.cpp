// The inference forms (BatchNorm folded into the convolutions, depthwise + projection fused)
// against the training-graph layers in eval mode.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/autograd.h"
#include "engine/folded_layers.h"
#include "tests/block_fixture.h"
#include "tests/op_reference.h"

using namespace osprey;
using tests::random_layer;
using tests::random_tensor;

namespace {

// Running statistics far from (0, 1) and pre-activations spread over both ReLU6 clamps, so the
// fold's scale and shift and the activation all matter.
void spread_statistics(ConvBnAct& l, Rng& rng) {
  const int64_t k = l.gamma.numel();
  l.gamma = random_tensor({k}, rng, 0.5, 1.0);
  l.beta = random_tensor({k}, rng, 2.0, 1.0);
  l.running_mean = random_tensor({k}, rng, 1.0);
  l.running_var = random_tensor({k}, rng, 0.2, 1.5);
}

void require_same(const Tensor& got, const Tensor& want, const std::string& what) {
  REQUIRE(got.shape() == want.shape());
  const std::vector<float> w = want.to_vector();
  osprey_test::require_close(got.to_vector(), std::vector<double>(w.begin(), w.end()), 1e-5, what);
}

}  // namespace

TEST_CASE("a folded conv+BN+activation equals the layer in eval mode") {
  autograd::NoGradGuard no_grad;
  Rng rng(11);
  struct LayerCase {
    ConvKind kind;
    int in, out, kernel, stride;
    osprey::Activation act;
  };
  for (const LayerCase& c :
       {LayerCase{ConvKind::dense, 3, 17, 3, 2, osprey::Activation::relu6},
        LayerCase{ConvKind::dense, 13, 9, 1, 1, osprey::Activation::none},
        LayerCase{ConvKind::dense, 5, 7, 3, 1, osprey::Activation::relu},
        LayerCase{ConvKind::depthwise, 21, 21, 3, 1, osprey::Activation::relu6},
        LayerCase{ConvKind::depthwise, 19, 19, 3, 2, osprey::Activation::relu6}}) {
    ConvBnAct l = random_layer(c.kind, c.in, c.out, c.kernel, c.stride, c.act, rng);
    spread_statistics(l, rng);
    const Tensor x = random_tensor({3, 9, 7, c.in}, rng, 1.0);
    require_same(ops::folded_conv_act(x, fold_batchnorm(l)), ops::conv_bn_act(x, l, false),
                 std::string(c.kind == ConvKind::dense ? "dense" : "depthwise") + " " +
                     std::to_string(c.kernel) + "x" + std::to_string(c.kernel) + " stride " +
                     std::to_string(c.stride));
  }
}

TEST_CASE("a folded, fused inverted-residual block equals the block in eval mode") {
  autograd::NoGradGuard no_grad;
  Rng rng(12);
  for (int stride : {1, 2})
    for (bool expand : {true, false}) {
      InvertedResidual block = tests::random_block(6, 4, stride, rng);
      if (!expand)  // MobileNetV2's first block: depthwise + project on the input width
        block.layers = {
            random_layer(ConvKind::depthwise, 6, 6, 3, stride, osprey::Activation::relu6, rng),
            random_layer(ConvKind::dense, 6, 6, 1, 1, osprey::Activation::none, rng)};
      for (ConvBnAct& l : block.layers) spread_statistics(l, rng);
      const Tensor x = random_tensor({2, 11, 10, 6}, rng, 1.0);
      require_same(ops::folded_inverted_residual(x, fold_batchnorm(block)),
                   ops::inverted_residual(x, block, false),
                   "block stride " + std::to_string(stride) + (expand ? " with" : " without") +
                       " expansion" + (block.residual ? ", residual" : ""));
    }
}

TEST_CASE("folding refuses blocks it cannot fuse and inputs that do not fit") {
  Rng rng(13);
  InvertedResidual block = tests::random_block(4, 2, 1, rng);
  InvertedResidual no_project = block;
  no_project.layers.pop_back();
  no_project.layers.erase(no_project.layers.begin());
  REQUIRE_THROWS_WITH(fold_batchnorm(no_project), Catch::Contains("2 or 3 layers"));
  InvertedResidual act_project = block;
  act_project.layers.back().act = osprey::Activation::relu6;
  REQUIRE_THROWS_WITH(fold_batchnorm(act_project), Catch::Contains("1x1 projection"));
  const FoldedInvertedResidual folded = fold_batchnorm(block);
  REQUIRE_THROWS_WITH(ops::folded_inverted_residual(random_tensor({1, 5, 5, 3}, rng, 1.0), folded),
                      Catch::Contains("channels"));
}
