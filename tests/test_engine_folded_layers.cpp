// The inference forms (BatchNorm folded into the convolutions, depthwise + projection fused)
// against the training-graph layers in eval mode.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/autograd.h"
#include "engine/folded_layers.h"
#include "engine/ops.h"
#include "tests/block_fixture.h"
#include "tests/op_reference.h"

using namespace osprey;
using tests::random_layer;
using tests::random_tensor;

using tests::require_same;
using tests::spread_statistics;

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

TEST_CASE("a folded, fused depthwise-separable pair equals its two layers in eval mode") {
  autograd::NoGradGuard no_grad;
  Rng rng(12);
  for (int stride : {1, 2})
    for (bool skip : {false, true}) {
      if (skip && stride == 2) continue;
      ConvBnAct dw = random_layer(ConvKind::depthwise, 6, 6, 3, stride, Activation::relu6, rng);
      ConvBnAct pw = random_layer(ConvKind::dense, 6, skip ? 6 : 9, 1, 1, Activation::none, rng);
      spread_statistics(dw, rng), spread_statistics(pw, rng);
      const Tensor x = random_tensor({2, 11, 10, 6}, rng, 1.0);
      Tensor want = ops::conv_bn_act(ops::conv_bn_act(x, dw, false), pw, false);
      if (skip) want = ops::add(want, x);
      require_same(ops::folded_depthwise_separable(x, fold_batchnorm(dw, pw), skip ? x : Tensor()),
                   want, "stride " + std::to_string(stride) + (skip ? ", skip" : ""));
    }
}

TEST_CASE("folding refuses pairs it cannot fuse and inputs that do not fit") {
  Rng rng(13);
  const ConvBnAct dw = random_layer(ConvKind::depthwise, 4, 4, 3, 1, Activation::relu6, rng);
  const ConvBnAct pw = random_layer(ConvKind::dense, 4, 4, 1, 1, Activation::none, rng);
  ConvBnAct act_pw = pw;
  act_pw.act = Activation::relu6;
  REQUIRE_THROWS_WITH(fold_batchnorm(dw, act_pw), Catch::Contains("1x1 projection"));
  REQUIRE_THROWS_WITH(fold_batchnorm(pw, pw), Catch::Contains("not a depthwise layer"));
  const ConvBnAct wide = random_layer(ConvKind::dense, 4, 4, 3, 1, Activation::none, rng);
  REQUIRE_THROWS_WITH(fold_batchnorm(dw, wide), Catch::Contains("1x1 projection"));
  const FoldedDepthwiseSeparable folded = fold_batchnorm(dw, pw);
  REQUIRE_THROWS_WITH(
      ops::folded_depthwise_separable(random_tensor({1, 5, 5, 3}, rng, 1.0), folded),
      Catch::Contains("channels"));
  const Tensor x = random_tensor({1, 5, 5, 4}, rng, 1.0);
  REQUIRE_THROWS_WITH(
      ops::folded_depthwise_separable(x, folded, random_tensor({1, 5, 4, 4}, rng, 1.0)),
      Catch::Contains("skip connection"));
}
