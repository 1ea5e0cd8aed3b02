// Random conv+BN+activation layers and inverted-residual blocks for tests, with BatchNorm
// affine parameters chosen so ReLU6 pre-activations stay near 3, far from the kinks at 0 and 6
// (where finite differences and rank-count comparisons would hinge on rounding).
#pragma once
#include <string>
#include <vector>

#include "engine/conv_bn_act.h"
#include "engine/rng.h"
#include "tests/op_reference.h"

namespace osprey::tests {

inline Tensor random_tensor(const Shape& s, Rng& rng, double scale, double offset = 0.0) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(offset + scale * rng.normal());
  return t;
}

inline ConvBnAct random_layer(ConvKind kind, int in, int out, int kernel, int stride,
                              osprey::Activation act, Rng& rng) {
  ConvBnAct l;
  l.kind = kind;
  l.stride = stride;
  l.pad = kernel / 2;
  l.act = act;
  l.weight = kind == ConvKind::dense ? random_tensor({out, kernel, kernel, in}, rng, 0.5)
                                     : random_tensor({kernel, kernel, out}, rng, 0.5);
  l.gamma = random_tensor({out}, rng, 0.05, 0.4);
  l.beta = random_tensor({out}, rng, 0.1, act == osprey::Activation::none ? 0.0 : 3.0);
  l.running_mean = random_tensor({out}, rng, 0.1);
  // Eval mode normalises with these: a large variance keeps pre-activations near beta.
  l.running_var = random_tensor({out}, rng, 1.0, 20.0);
  for (Tensor* t : {&l.weight, &l.gamma, &l.beta}) t->set_requires_grad();
  return l;
}

// expand 1x1 (ReLU6), depthwise 3x3 (ReLU6), project 1x1 (no activation); skip when stride 1.
inline ConvBnActChain random_block(int channels, int expand, int stride, Rng& rng) {
  ConvBnActChain block;
  int hidden = channels * expand;
  block.layers = {
      random_layer(ConvKind::dense, channels, hidden, 1, 1, osprey::Activation::relu6, rng),
      random_layer(ConvKind::depthwise, hidden, hidden, 3, stride, osprey::Activation::relu6, rng),
      random_layer(ConvKind::dense, hidden, channels, 1, 1, osprey::Activation::none, rng)};
  block.residual = stride == 1;
  return block;
}

// Running statistics far from (0, 1) and pre-activations spread over both ReLU6 clamps, so the
// fold's scale and shift and the activation all matter.
inline void spread_statistics(ConvBnAct& l, Rng& rng) {
  const int64_t k = l.gamma.numel();
  l.gamma = random_tensor({k}, rng, 0.5, 1.0);
  l.beta = random_tensor({k}, rng, 2.0, 1.0);
  l.running_mean = random_tensor({k}, rng, 1.0);
  l.running_var = random_tensor({k}, rng, 0.2, 1.5);
}

inline void require_same(const Tensor& got, const Tensor& want, const std::string& what) {
  REQUIRE(got.shape() == want.shape());
  const std::vector<float> w = want.to_vector();
  osprey_test::require_close(got.to_vector(), std::vector<double>(w.begin(), w.end()), 1e-5, what);
}

}  // namespace osprey::tests
