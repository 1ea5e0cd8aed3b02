// The standalone ops batch_norm and depthwise_conv2d: after a convolution they are the coarse
// conv_bn_act node bit for bit (the same kernels in the same order), and on their own their
// gradients match finite differences.
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/batch_norm.h"
#include "engine/conv_bn_act.h"
#include "engine/ops.h"
#include "tests/block_fixture.h"

using namespace osprey;
using tests::random_layer;
using tests::random_tensor;

namespace {

ConvBnAct copy_of(const ConvBnAct& l) {
  ConvBnAct c = l;
  for (Tensor* t : {&c.weight, &c.gamma, &c.beta}) *t = t->clone().set_requires_grad();
  c.running_mean = l.running_mean.clone(), c.running_var = l.running_var.clone();
  return c;
}

// Largest |analytic - central difference| over t's elements, relative to the largest
// difference quotient.
double worst_gradient_error(const Tensor& t, const std::function<double()>& loss) {
  const std::vector<float> analytic = t.grad().to_vector();
  autograd::NoGradGuard no_grad;
  float* p = t.data<float>();
  double worst = 0, scale = 1e-3;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float orig = p[i], h = 1e-2f;
    p[i] = orig + h;
    const double up = loss();
    p[i] = orig - h;
    const double down = loss();
    p[i] = orig;
    const double fd = (up - down) / (2.0 * h);
    worst = std::max(worst, std::abs(analytic[size_t(i)] - fd));
    scale = std::max(scale, std::abs(fd));
  }
  return worst / scale;
}

}  // namespace

TEST_CASE("a convolution followed by batch_norm is conv_bn_act, bit for bit") {
  for (ConvKind kind : {ConvKind::dense, ConvKind::depthwise})
    for (bool training : {true, false}) {
      INFO((kind == ConvKind::dense ? "dense" : "depthwise") << " training " << training);
      Rng rng(21);
      const int out = kind == ConvKind::dense ? 7 : 5;
      const ConvBnAct fused = random_layer(kind, 5, out, 3, 2, Activation::relu6, rng);
      const ConvBnAct split = copy_of(fused);
      Tensor x = random_tensor({2, 9, 8, 5}, rng, 1.0).set_requires_grad();
      Tensor x2 = x.clone().set_requires_grad();
      // One graph at a time: backward runs (and clears) the whole tape.
      const Tensor y = ops::conv_bn_act(x, fused, training);
      const Tensor dy = random_tensor(y.shape(), rng, 1.0);
      autograd::backward(y, dy);
      const Tensor z =
          kind == ConvKind::dense
              ? ops::conv2d(x2, split.weight, Tensor(), split.stride, split.pad)
              : ops::depthwise_conv2d(x2, split.weight, Tensor(), split.stride, split.pad);
      const Tensor y2 = ops::batch_norm(z, batch_norm_of(split), training);
      REQUIRE(y2.to_vector() == y.to_vector());
      autograd::backward(y2, dy);
      REQUIRE(x2.grad().to_vector() == x.grad().to_vector());
      REQUIRE(split.weight.grad().to_vector() == fused.weight.grad().to_vector());
      REQUIRE(split.gamma.grad().to_vector() == fused.gamma.grad().to_vector());
      REQUIRE(split.beta.grad().to_vector() == fused.beta.grad().to_vector());
      REQUIRE(split.running_mean.to_vector() == fused.running_mean.to_vector());
      REQUIRE(split.running_var.to_vector() == fused.running_var.to_vector());
    }
}

TEST_CASE(
    "batch_norm on [N, C] features and depthwise_conv2d with a bias match finite "
    "differences") {
  Rng rng(22);
  for (bool training : {true, false}) {
    INFO("batch_norm training " << training);
    BatchNorm bn;
    bn.gamma = random_tensor({6}, rng, 0.3, 1.0).set_requires_grad();
    bn.beta = random_tensor({6}, rng, 0.3).set_requires_grad();
    bn.running_mean = random_tensor({6}, rng, 0.2);
    bn.running_var = random_tensor({6}, rng, 0.1, 1.5);
    bn.act = Activation::none;  // smooth: finite differences need no kink handling
    Tensor x = random_tensor({5, 6}, rng, 1.0).set_requires_grad();
    const Tensor r = random_tensor({5, 6}, rng, 1.0);
    const std::vector<float> mean0 = bn.running_mean.to_vector(), var0 = bn.running_var.to_vector();
    auto loss_of = [&] {
      std::copy(mean0.begin(), mean0.end(), bn.running_mean.data<float>());
      std::copy(var0.begin(), var0.end(), bn.running_var.data<float>());
      const Tensor y = ops::batch_norm(x, bn, training);
      double s = 0;
      for (int64_t i = 0; i < y.numel(); ++i) s += double(y.data<float>()[i]) * r.data<float>()[i];
      return s;
    };
    const Tensor y = ops::batch_norm(x, bn, training);
    autograd::backward(y, r);
    for (const Tensor* t : {&x, &bn.gamma, &bn.beta})
      REQUIRE(worst_gradient_error(*t, loss_of) < 2e-3);
  }
  Tensor x = random_tensor({2, 6, 5, 4}, rng, 1.0).set_requires_grad();
  Tensor w = random_tensor({3, 3, 4}, rng, 0.5).set_requires_grad();
  Tensor b = random_tensor({4}, rng, 0.5).set_requires_grad();
  const Tensor r = random_tensor({2, 3, 3, 4}, rng, 1.0);
  auto loss_of = [&] {
    const Tensor y = ops::depthwise_conv2d(x, w, b, 2, 1);
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += double(y.data<float>()[i]) * r.data<float>()[i];
    return s;
  };
  autograd::backward(ops::depthwise_conv2d(x, w, b, 2, 1), r);
  for (const Tensor* t : {&x, &w, &b}) REQUIRE(worst_gradient_error(*t, loss_of) < 2e-3);
  REQUIRE_THROWS_WITH(ops::depthwise_conv2d(x, random_tensor({3, 3, 5}, rng, 0.5), b, 1, 1),
                      Catch::Contains("is for 5 channels"));
  BatchNorm wrong;
  wrong.gamma = wrong.beta = wrong.running_mean = wrong.running_var = Tensor::full({3}, 1.0f);
  REQUIRE_THROWS_WITH(ops::batch_norm(x, wrong, true), Catch::Contains("of 3 channels"));
}
