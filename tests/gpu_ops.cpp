// Every engine op on cuda against the same op on the cpu (ggml's test matrix): same inputs,
// same output gradient, then outputs and every input and parameter gradient compared.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "engine/autograd.h"
#include "engine/conv_bn_act.h"
#include "engine/ops.h"
#include "tests/block_fixture.h"
#include "tests/cuda_test_support.h"

namespace osprey::tests {
namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct DeviceRun {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;  // of each input, in order
};

// Copies the inputs to `device` (leaves, requiring grad as the originals), runs fn, and
// backpropagates grad_out from its output.
DeviceRun run_on(Device device, const std::vector<Tensor>& inputs, const OpFn& fn,
                 const Tensor& grad_out) {
  std::vector<Tensor> ins;
  for (const Tensor& t : inputs) {
    Tensor c = t.to(device).clone();
    if (t.requires_grad()) c.set_requires_grad();
    ins.push_back(c);
  }
  Tensor out = fn(ins);
  DeviceRun r;
  r.out = out.to_vector();
  autograd::backward(out, grad_out.to(device));
  for (const Tensor& t : ins)
    r.grads.push_back(t.requires_grad() && t.grad().defined() ? t.grad().to_vector()
                                                              : std::vector<float>{});
  return r;
}

double l2_norm(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += double(x) * double(x);
  return std::sqrt(s);
}

std::vector<float> difference(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

void check_op(const char* name, const std::vector<Tensor>& inputs, const OpFn& fn,
              const Shape& out_shape, double tol = 1e-5) {
  Rng rng(99);
  Tensor grad_out = random_tensor(out_shape, rng, 1.0);
  DeviceRun cpu_run = run_on(Device::cpu, inputs, fn, grad_out);
  DeviceRun gpu_run = run_on(Device::cuda, inputs, fn, grad_out);
  INFO(name);
  CHECK(rel_l2(gpu_run.out, cpu_run.out) < tol);
  double largest = 0.0;
  for (const auto& g : cpu_run.grads) largest = std::max(largest, l2_norm(g));
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << i);
    const auto &ours = gpu_run.grads[i], &ref = cpu_run.grads[i];
    REQUIRE(ours.size() == ref.size());
    if (ref.empty()) continue;
    // A gradient that is zero in exact arithmetic (the bias of a BatchNorm whose output feeds a
    // 1x1 conv and another training-mode BatchNorm: a per-channel shift is normalised away) is
    // rounding noise on both devices; it is measured against the largest gradient instead.
    if (l2_norm(ref) < 1e-4 * largest)
      CHECK(l2_norm(difference(ours, ref)) / largest < tol);
    else
      CHECK(rel_l2(ours, ref) < tol);
  }
}

Tensor leaf(const Shape& s, Rng& rng, double scale = 1.0) {
  Tensor t = random_tensor(s, rng, scale);
  t.set_requires_grad();
  return t;
}

}  // namespace

TEST_CASE("cuda ops match the cpu ops: conv2d, linear, relu, pooling, add, loss") {
  Rng rng(1);
  check_op("conv2d 3x3 bias",
           {leaf({3, 9, 7, 5}, rng), leaf({6, 3, 3, 5}, rng, 0.3), leaf({6}, rng)},
           [](auto& t) { return ops::conv2d(t[0], t[1], t[2], 1, 1); }, {3, 9, 7, 6});
  check_op("conv2d 3x3 stride 2", {leaf({2, 11, 10, 3}, rng), leaf({8, 3, 3, 3}, rng, 0.3)},
           [](auto& t) { return ops::conv2d(t[0], t[1], Tensor(), 2, 1); }, {2, 6, 5, 8});
  check_op("linear", {leaf({5, 37}, rng), leaf({11, 37}, rng, 0.2), leaf({11}, rng)},
           [](auto& t) { return ops::linear(t[0], t[1], t[2]); }, {5, 11});
  check_op("relu", {leaf({4, 33}, rng)}, [](auto& t) { return ops::relu(t[0]); }, {4, 33});
  check_op("max_pool2d", {leaf({2, 9, 8, 3}, rng)},
           [](auto& t) { return ops::max_pool2d(t[0], 2, 2); }, {2, 4, 4, 3});
  check_op("add", {leaf({3, 17}, rng), leaf({3, 17}, rng)},
           [](auto& t) { return ops::add(t[0], t[1]); }, {3, 17});
  check_op("flatten", {leaf({2, 3, 4, 5}, rng)}, [](auto& t) { return ops::flatten(t[0]); },
           {2, 60});
  check_op("global_avg_pool", {leaf({3, 5, 7, 13}, rng)},
           [](auto& t) { return ops::global_avg_pool(t[0]); }, {3, 13});
  Tensor labels = Tensor::from_labels({3, 0, 9, 4, 4});
  for (float smoothing : {0.0f, 0.1f})
    check_op("softmax_cross_entropy", {leaf({5, 10}, rng, 2.0)},
             [&](auto& t) { return ops::softmax_cross_entropy(t[0], labels, smoothing); }, {1});
}

TEST_CASE("cuda dropout draws the cpu's mask") {
  Rng rng(2);
  check_op(
      "dropout", {leaf({7, 129}, rng)},
      [](auto& t) {
        Rng masks(1234);
        return ops::dropout(t[0], 0.3f, true, masks);
      },
      {7, 129}, 1e-7);
}

TEST_CASE("cuda conv_bn_act and conv_bn_act_chain match the cpu, train and eval mode") {
  for (bool training : {true, false}) {
    INFO("training " << training);
    Rng rng(3);
    ConvBnAct dense = random_layer(ConvKind::dense, 5, 12, 3, 2, osprey::Activation::relu6, rng);
    ConvBnAct dw = random_layer(ConvKind::depthwise, 12, 12, 3, 1, osprey::Activation::relu6, rng);
    ConvBnActChain block = random_block(8, 6, 1, rng);
    ConvBnActChain down = random_block(8, 6, 2, rng);
    // The layer's tensors are inputs of the op so that they move to each device.
    auto layer_inputs = [](const ConvBnAct& l) {
      return std::vector<Tensor>{l.weight, l.gamma, l.beta, l.running_mean, l.running_var};
    };
    auto layer_from = [](ConvBnAct l, const std::vector<Tensor>& t, size_t at) {
      l.weight = t[at], l.gamma = t[at + 1], l.beta = t[at + 2];
      l.running_mean = t[at + 3], l.running_var = t[at + 4];
      return l;
    };
    for (const ConvBnAct* l : {&dense, &dw}) {
      std::vector<Tensor> in = {leaf({3, 9, 9, l == &dense ? 5 : 12}, rng)};
      for (const Tensor& t : layer_inputs(*l)) in.push_back(t);
      Shape out = l == &dense ? Shape{3, 5, 5, 12} : Shape{3, 9, 9, 12};
      check_op(
          l == &dense ? "conv_bn_act dense" : "conv_bn_act depthwise", in,
          [&](auto& t) { return ops::conv_bn_act(t[0], layer_from(*l, t, 1), training); }, out);
    }
    for (const ConvBnActChain* b : {&block, &down}) {
      std::vector<Tensor> in = {leaf({2, 7, 9, 8}, rng)};
      for (const ConvBnAct& l : b->layers)
        for (const Tensor& t : layer_inputs(l)) in.push_back(t);
      Shape out = b == &block ? Shape{2, 7, 9, 8} : Shape{2, 4, 5, 8};
      check_op(
          b == &block ? "inverted_residual" : "inverted_residual stride 2", in,
          [&](auto& t) {
            ConvBnActChain copy = *b;
            for (size_t i = 0; i < copy.layers.size(); ++i)
              copy.layers[i] = layer_from(copy.layers[i], t, 1 + 5 * i);
            return ops::conv_bn_act_chain(t[0], copy, training);
          },
          out);
    }
  }
}

TEST_CASE("a cuda tensor read on the host fails with a message instead of a crash") {
  Tensor t = Tensor::full({3}, 1.0f).to(Device::cuda);
  REQUIRE_THROWS_WITH(t.data<float>(), Catch::Contains("on cuda was read on the host"));
  REQUIRE(t.to_vector() == std::vector<float>{1.0f, 1.0f, 1.0f});
  REQUIRE_THROWS_WITH(ops::add(t, Tensor::full({3}, 1.0f)), Catch::Contains("do not match"));
}

}  // namespace osprey::tests
