// Autograd: gradients of small graphs against finite differences, tensors used twice, hooks,
// no-grad mode and tape lifetime.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/param_store.h"

using namespace osprey;

namespace {

Tensor random_tensor(const Shape& s, Rng& rng, double scale = 1.0) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(scale * rng.normal());
  return t;
}

// Central differences of a scalar function of t, evaluated without recording.
std::vector<double> finite_difference(const Tensor& t, const std::function<double()>& f) {
  autograd::NoGradGuard no_grad;
  std::vector<double> g(size_t(t.numel()));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float orig = p[i];
    const float h = 1e-2f;
    p[i] = orig + h;
    double up = f();
    p[i] = orig - h;
    double down = f();
    p[i] = orig;
    g[size_t(i)] = (up - down) / (2.0 * double(h));
  }
  return g;
}

void require_close(const Tensor& grad, const std::vector<double>& ref, double tol) {
  REQUIRE(grad.defined());
  REQUIRE(grad.numel() == int64_t(ref.size()));
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = grad.data<float>()[i] - ref[i];
    diff += d * d;
    norm += ref[i] * ref[i];
  }
  INFO("relative error " << std::sqrt(diff / norm));
  REQUIRE(std::sqrt(diff / norm) < tol);
}

}  // namespace

TEST_CASE("a tensor feeding two ops gets the sum of both gradients") {
  Rng rng(7);
  Tensor x = random_tensor({3, 5, 5, 2}, rng);
  Tensor w = random_tensor({4, 3, 3, 2}, rng, 0.3);
  Tensor wa = random_tensor({3, 3 * 3 * 4}, rng, 0.3);
  Tensor wb = random_tensor({3, 5 * 5 * 2}, rng, 0.1);
  Tensor labels = Tensor::from_labels({0, 2, 1});
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  // x reaches the loss through a conv and through a skip; the conv output is used twice.
  auto forward = [&] {
    Tensor c = ops::conv2d(x, w, Tensor(), 2, 1);
    Tensor c2 = ops::add(ops::relu(c), c);
    Tensor logits = ops::add(ops::linear(ops::flatten(c2), wa, Tensor()),
                             ops::linear(ops::flatten(x), wb, Tensor()));
    return ops::softmax_cross_entropy(logits, labels);
  };
  Tensor loss = forward();
  REQUIRE(autograd::tape_size() == 9);  // conv relu add reshape linear reshape linear add loss
  loss.backward();
  REQUIRE(autograd::tape_size() == 0);
  auto f = [&] { return double(forward().data<float>()[0]); };
  require_close(x.grad(), finite_difference(x, f), 1e-2);
  require_close(w.grad(), finite_difference(w, f), 1e-2);
  REQUIRE_FALSE(wa.grad().defined());  // never asked for
}

TEST_CASE("no-grad mode records nothing and outputs do not require grad") {
  Rng rng(1);
  Tensor x = random_tensor({2, 4}, rng).set_requires_grad(true);
  Tensor w = random_tensor({3, 4}, rng);
  {
    autograd::NoGradGuard guard;
    Tensor y = ops::linear(x, w, Tensor());
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(autograd::tape_size() == 0);
  }
  Tensor y = ops::linear(x, w, Tensor());
  REQUIRE(y.requires_grad());
  REQUIRE(autograd::tape_size() == 1);
  autograd::clear_tape();
}

TEST_CASE("a gradient accumulates over two backward passes") {
  Rng rng(2);
  Tensor x = random_tensor({2, 3}, rng).set_requires_grad(true);
  Tensor w = random_tensor({2, 3}, rng);
  Tensor labels = Tensor::from_labels({1, 0});
  ops::softmax_cross_entropy(ops::linear(x, w, Tensor()), labels).backward();
  std::vector<float> once = x.grad().to_vector();
  ops::softmax_cross_entropy(ops::linear(x, w, Tensor()), labels).backward();
  std::vector<float> twice = x.grad().to_vector();
  for (size_t i = 0; i < once.size(); ++i) REQUIRE(twice[i] == Approx(2 * once[i]));
}

TEST_CASE("grad-ready hooks fire once per parameter, after its gradient is final") {
  ParamStore store;
  Tensor w1 = store.add("a.weight", {4, 3});
  Tensor w2 = store.add("b.weight", {2, 4});
  store.finalize();
  Rng rng(3);
  for (const Tensor& t : {w1, w2})
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(rng.normal());
  std::vector<int> order;
  std::vector<std::vector<float>> at_hook(2);
  store.set_grad_ready_hook([&](int i) {
    order.push_back(i);
    at_hook[size_t(i)] = store.params()[size_t(i)].value.grad().to_vector();
  });
  Tensor x = random_tensor({5, 3}, rng);
  // w1 is used twice (two branches), so its hook must wait for both.
  Tensor h = ops::add(ops::relu(ops::linear(x, w1, Tensor())), ops::linear(x, w1, Tensor()));
  Tensor loss = ops::softmax_cross_entropy(ops::linear(h, w2, Tensor()),
                                           Tensor::from_labels({0, 1, 1, 0, 1}));
  loss.backward();
  REQUIRE(order == std::vector<int>{1, 0});
  for (int i = 0; i < 2; ++i)
    REQUIRE(at_hook[size_t(i)] == store.params()[size_t(i)].value.grad().to_vector());
}

TEST_CASE("backward needs a scalar that requires grad") {
  Tensor x = Tensor::full({2}, 1.0f).set_requires_grad(true);
  Tensor w = Tensor::full({3, 2}, 0.5f);
  Tensor y = ops::linear(x.view({1, 2}), w, Tensor());
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("scalar"));
  autograd::clear_tape();
  REQUIRE_THROWS_WITH(Tensor::full({1}, 1.0f).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("dropout is the identity in eval mode and reproducible in train mode") {
  Rng rng(4);
  Tensor x = random_tensor({1000}, rng);
  Rng a(9), b(9);
  REQUIRE(ops::dropout(x, 0.5f, false, a).same(x));
  Tensor y1 = ops::dropout(x, 0.5f, true, a), y2 = ops::dropout(x, 0.5f, true, b);
  REQUIRE(y1.to_vector() == y2.to_vector());
  Tensor y3 = ops::dropout(x, 0.5f, true, a);  // the stream moved on: another mask
  REQUIRE(y3.to_vector() != y1.to_vector());
}

TEST_CASE("softmax and log_softmax gradients match finite differences") {
  Rng rng(5);
  // Rank 3: the ops normalise the last dimension, the rows being the first two.
  Tensor x = random_tensor({2, 3, 4}, rng, 2.0).set_requires_grad(true);
  Tensor w = random_tensor({3, 12}, rng);
  Tensor labels = Tensor::from_labels({2, 0});
  for (auto op : {ops::softmax, ops::log_softmax}) {
    auto forward = [&] {
      Tensor y = op(x);
      REQUIRE(y.shape() == x.shape());
      return ops::softmax_cross_entropy(ops::linear(ops::reshape(y, {2, 12}), w, Tensor()), labels);
    };
    x.zero_grad();
    forward().backward();
    auto f = [&] { return double(forward().data<float>()[0]); };
    require_close(x.grad(), finite_difference(x, f), 1e-2);
  }
}

TEST_CASE("softmax and log_softmax normalise the last dimension") {
  Tensor x = Tensor::from_data({2, 2}, {0.0f, std::log(3.0f), 5.0f, 5.0f});
  const std::vector<float> want = {0.25f, 0.75f, 0.5f, 0.5f};
  const std::vector<float> y = ops::softmax(x).to_vector(), ly = ops::log_softmax(x).to_vector();
  for (size_t i = 0; i < want.size(); ++i) {
    REQUIRE(y[i] == Approx(want[i]));
    REQUIRE(ly[i] == Approx(std::log(want[i])));
  }
  REQUIRE_THROWS_WITH(ops::softmax(Tensor::empty({})), Catch::Contains("0-D"));
  REQUIRE_THROWS_WITH(ops::log_softmax(Tensor::empty({3}, DType::i64)), Catch::Contains("f32"));
}
