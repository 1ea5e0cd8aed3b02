// Mixed-precision training of whole models: MobileNetV2 with bf16 activations follows the f32
// run from the same initialisation; models without a bf16 path say so.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/optim.h"
#include "models/registry.h"
#include "tests/block_fixture.h"

using namespace osprey;

namespace {

struct Steps {
  std::vector<float> losses;
  DType logits_dtype = DType::f32;
};

Steps train(DType dtype, int steps) {
  models::ModelSpec spec;
  spec.name = "mobilenet_v2_cifar";
  spec.in_channels = 3, spec.height = spec.width = 16, spec.width_mult = 0.25f;
  spec.dropout = 0.0f;
  auto model = models::create_model(spec);
  model->set_activation_dtype(dtype);
  OptimizerOptions oo;
  oo.kind = "adam", oo.lr = 3e-3f;
  auto opt = make_optimizer(model->params(), oo);
  Rng rng(3);
  Tensor x = tests::random_tensor({16, 16, 16, 3}, rng, 1.0);
  std::vector<int64_t> labels;
  for (int i = 0; i < 16; ++i) labels.push_back(i % 10);
  Steps s;
  for (int i = 0; i < steps; ++i) {
    opt->zero_grad();
    Tensor logits = model->forward(x);
    s.logits_dtype = logits.dtype();
    Tensor loss = ops::softmax_cross_entropy(logits, Tensor::from_labels(labels));
    loss.backward();
    opt->step();
    s.losses.push_back(loss.to_vector()[0]);
  }
  return s;
}

}  // namespace

// A freshly initialised MobileNetV2 amplifies rounding layer by layer in training mode (its
// BatchNorms normalise small per-channel spreads): bf16's features drift from f32's by ~26% at
// the head here, exactly as PyTorch's bf16 autocast does on the same network (docs/gpu.md), and
// two runs part ways after a step or two. What must hold: the classifier stays f32, the first
// loss (same parameters) agrees, and the bf16 run learns the batch as the f32 run does.
TEST_CASE("mobilenet_v2 trains in bf16 like in f32 from the same start") {
  const Steps f32 = train(DType::f32, 12), bf16 = train(DType::bf16, 12);
  REQUIRE(bf16.logits_dtype == DType::f32);
  INFO("f32 " << f32.losses.front() << " -> " << f32.losses.back() << ", bf16 "
              << bf16.losses.front() << " -> " << bf16.losses.back());
  REQUIRE(std::abs(bf16.losses[0] - f32.losses[0]) < 1e-2 * f32.losses[0]);
  REQUIRE(f32.losses.back() < 0.5 * f32.losses.front());
  REQUIRE(bf16.losses.back() < 0.5 * bf16.losses.front());
}

TEST_CASE("a model without a bf16 path refuses bf16 activations by name") {
  models::ModelSpec spec;  // simple_cnn
  auto model = models::create_model(spec);
  REQUIRE_THROWS_WITH(model->set_activation_dtype(DType::bf16),
                      Catch::Contains("simple_cnn has no bf16 path"));
  model->set_activation_dtype(DType::f32);
}
