// The coarse conv+BN+activation and inverted-residual nodes against finite differences of the
// loss, in training mode (batch statistics) and eval mode (running statistics).
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/conv_bn_act.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "engine/storage.h"
#include "tests/block_fixture.h"

using namespace osprey;
using tests::random_layer;
using tests::random_tensor;

namespace {

// Squared error between the analytic gradient and central differences, and the squared norm of
// the differences.
struct GradError {
  double diff = 0, norm = 0;
};

GradError finite_difference_error(const Tensor& t, const std::function<double()>& loss) {
  std::vector<float> analytic = t.grad().to_vector();
  autograd::NoGradGuard no_grad;
  float* p = t.data<float>();
  GradError e;
  for (int64_t i = 0; i < t.numel(); ++i) {
    float orig = p[i];
    const float h = 2e-3f;
    p[i] = orig + h;
    double up = loss();
    p[i] = orig - h;
    double down = loss();
    p[i] = orig;
    double fd = (up - down) / (2.0 * h);
    e.diff += (analytic[size_t(i)] - fd) * (analytic[size_t(i)] - fd);
    e.norm += fd * fd;
  }
  return e;
}

}  // namespace

TEST_CASE("inverted residual block gradients match finite differences") {
  for (bool training : {true, false}) {
    for (int stride : {1, 2}) {
      INFO("training " << training << " stride " << stride);
      Rng rng(uint64_t(11 + stride + 10 * training));
      ConvBnActChain block = tests::random_block(4, 3, stride, rng);
      Tensor x = random_tensor({2, 5, 5, 4}, rng, 1.0).set_requires_grad();
      int out_hw = stride == 1 ? 5 : 3;
      Tensor fc = random_tensor({3, out_hw * out_hw * 4}, rng, 0.3);
      Tensor labels = Tensor::from_labels({2, 0});
      // Running statistics change on every train-mode forward; the loss must not depend on
      // that, so each evaluation restores them.
      std::vector<std::vector<float>> stats;
      for (auto& l : block.layers) {
        stats.push_back(l.running_mean.to_vector());
        stats.push_back(l.running_var.to_vector());
      }
      auto forward = [&] {
        for (size_t i = 0; i < block.layers.size(); ++i) {
          std::copy(stats[2 * i].begin(), stats[2 * i].end(),
                    block.layers[i].running_mean.data<float>());
          std::copy(stats[2 * i + 1].begin(), stats[2 * i + 1].end(),
                    block.layers[i].running_var.data<float>());
        }
        Tensor y = ops::conv_bn_act_chain(x, block, training);
        return ops::softmax_cross_entropy(ops::linear(ops::flatten(y), fc, Tensor()), labels);
      };
      forward().backward();
      auto loss = [&] { return double(forward().data<float>()[0]); };
      // Some gradients are nearly zero in exact arithmetic (the beta of a BN whose shift the
      // next train-mode BN removes, up to border effects), so float finite differences cannot
      // measure them relatively: every tensor's error is measured against the norm of all.
      std::vector<Tensor> tensors = {x};
      for (const ConvBnAct& l : block.layers)
        tensors.insert(tensors.end(), {l.weight, l.gamma, l.beta});
      std::vector<GradError> errors;
      double total_norm = 0, total_diff = 0;
      for (const Tensor& t : tensors) {
        errors.push_back(finite_difference_error(t, loss));
        total_norm += errors.back().norm;
        total_diff += errors.back().diff;
      }
      REQUIRE(std::sqrt(total_diff / total_norm) < 1e-2);
      for (size_t i = 0; i < errors.size(); ++i) {
        INFO("tensor " << i << " error " << std::sqrt(errors[i].diff) << " of all-gradient norm "
                       << std::sqrt(total_norm));
        REQUIRE(std::sqrt(errors[i].diff) < 1e-2 * std::sqrt(total_norm));
      }
    }
  }
}

TEST_CASE("conv_bn_act updates running statistics like PyTorch and counts batches") {
  Rng rng(5);
  ConvBnAct l = random_layer(ConvKind::dense, 3, 4, 3, 1, osprey::Activation::relu, rng);
  l.num_batches_tracked = Tensor::zeros({}, DType::i64);
  std::vector<float> mean0 = l.running_mean.to_vector(), var0 = l.running_var.to_vector();
  Tensor x = random_tensor({2, 4, 4, 3}, rng, 1.0);
  autograd::NoGradGuard no_grad;
  ops::conv_bn_act(x, l, /*training=*/false);
  REQUIRE(l.running_mean.to_vector() == mean0);  // eval mode leaves them alone
  REQUIRE(l.num_batches_tracked.data<int64_t>()[0] == 0);
  // Reference: the conv output's per-channel statistics from an identity-BN eval pass.
  ConvBnAct probe = l;
  probe.act = osprey::Activation::none;
  probe.gamma = Tensor::full({4}, 1.0f), probe.beta = Tensor::full({4}, 0.0f);
  probe.running_mean = Tensor::full({4}, 0.0f), probe.running_var = Tensor::full({4}, 1.0f - 1e-5f);
  Tensor z = ops::conv_bn_act(x, probe, false);
  ops::conv_bn_act(x, l, /*training=*/true);
  REQUIRE(l.num_batches_tracked.data<int64_t>()[0] == 1);
  const int m = 2 * 4 * 4;
  for (int k = 0; k < 4; ++k) {
    double s = 0, ss = 0;
    for (int i = 0; i < m; ++i) s += z.data<float>()[i * 4 + k];
    double mean = s / m;
    for (int i = 0; i < m; ++i) ss += std::pow(z.data<float>()[i * 4 + k] - mean, 2);
    REQUIRE(l.running_mean.data<float>()[k] ==
            Approx(0.9 * mean0[size_t(k)] + 0.1 * mean).margin(1e-5));
    REQUIRE(l.running_var.data<float>()[k] ==
            Approx(0.9 * var0[size_t(k)] + 0.1 * ss / (m - 1)).margin(1e-5));
  }
}

TEST_CASE("the profiler names each part of a block, once per call, only while enabled") {
  using namespace osprey;
  Rng rng(17);
  ConvBnActChain block = tests::random_block(4, 3, 1, rng);
  Tensor x = tests::random_tensor({2, 5, 5, 4}, rng, 1.0);
  x.set_requires_grad();
  auto run = [&] {
    Tensor y = ops::conv_bn_act_chain(x, block, true);
    autograd::backward(y, Tensor::full(y.shape(), 1.0f));
  };
  profiler::reset();
  run();  // not recording
  REQUIRE(profiler::report().empty());
  profiler::enable(true, Device::cpu);
  run();
  run();
  profiler::enable(false);
  std::map<std::string, int64_t> calls;
  for (const auto& e : profiler::report()) {
    calls[e.name] = e.calls;
    CHECK(e.ms >= 0.0);
  }
  CHECK(calls["forward conv 1x1"] == 4);  // expand and project, twice
  CHECK(calls["forward depthwise"] == 2);
  CHECK(calls["forward batchnorm statistics"] == 6);
  CHECK(calls["forward batchnorm+act"] == 6);
  CHECK(calls["forward conv_bn_act_chain"] == 2);
  CHECK(calls["backward conv_bn_act_chain"] == 2);
  CHECK(calls["backward batchnorm+act"] == 6);
  CHECK(calls["backward conv 1x1"] == 4);
  CHECK(calls["backward depthwise"] == 2);
  CHECK(calls.size() == 9);
  profiler::reset();
}

TEST_CASE("recomputing a block's hidden activations gives bit-identical gradients, kept less") {
  for (bool training : {true, false})
    for (int stride : {1, 2}) {
      INFO("training " << training << " stride " << stride);
      // Gradients of x and of every layer's tensors, and the tensor memory the forward leaves
      // held for backward.
      auto run = [&](bool recompute) {
        Rng rng(uint64_t(40 + stride));
        ConvBnActChain block = tests::random_block(8, 6, stride, rng);
        block.recompute_hidden = recompute;
        Tensor x = random_tensor({4, 12, 12, 8}, rng, 1.0).set_requires_grad();
        const uint64_t before = cpu_tensor_bytes_in_use();
        Tensor y = ops::conv_bn_act_chain(x, block, training);
        const uint64_t held = cpu_tensor_bytes_in_use() - before;
        Tensor fc = random_tensor({3, y.numel() / 4}, rng, 0.3);
        Tensor loss = ops::softmax_cross_entropy(ops::linear(ops::flatten(y), fc, Tensor()),
                                                 Tensor::from_labels({2, 0, 1, 2}));
        loss.backward();
        std::vector<std::vector<float>> grads = {x.grad().to_vector()};
        for (const ConvBnAct& l : block.layers)
          for (const Tensor* t : {&l.weight, &l.gamma, &l.beta})
            grads.push_back(t->grad().to_vector());
        return std::make_pair(grads, held);
      };
      const auto kept = run(false), recomputed = run(true);
      REQUIRE(kept.first.size() == recomputed.first.size());
      for (size_t i = 0; i < kept.first.size(); ++i) {
        INFO("gradient " << i);
        REQUIRE(kept.first[i] == recomputed.first[i]);
      }
      // The expand and depthwise outputs (6x the block's width) are not held through backward.
      INFO("bytes held kept " << kept.second << " recomputed " << recomputed.second);
      REQUIRE(recomputed.second < kept.second * 0.8);
    }
}
