// ops::conv2d_max_pool2d against the unfused ops::max_pool2d(ops::conv2d(...)): outputs and
// parameter gradients, and the fallback when the input needs a gradient.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/block_fixture.h"

using namespace osprey;
using tests::random_tensor;

namespace {

struct Result {
  std::vector<float> y, dw, db, dx;
};

// Runs f on fresh copies of the parameters, back from a fixed output gradient.
template <class F>
Result run(F f, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy) {
  Tensor wc = Tensor::from_data(w.shape(), w.to_vector()).set_requires_grad();
  Tensor bc = Tensor::from_data(b.shape(), b.to_vector()).set_requires_grad();
  Tensor y = f(x, wc, bc);
  autograd::backward(y, dy);
  Result r{y.to_vector(), wc.grad().to_vector(), bc.grad().to_vector(), {}};
  if (x.requires_grad()) r.dx = x.grad().to_vector();
  return r;
}

void require_near(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  REQUIRE(got.size() == want.size());
  double scale = 0.0;
  for (float v : want) scale = std::max(scale, std::abs(double(v)));
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << " got " << got[i] << " want " << want[i]);
    REQUIRE(std::abs(double(got[i]) - want[i]) <= tol * std::max(scale, 1e-30));
  }
}

}  // namespace

TEST_CASE("conv2d_max_pool2d matches max_pool2d of conv2d") {
  for (int c : {1, 3})
    for (int pad : {0, 1}) {
      INFO("channels " << c << " pad " << pad);
      Rng rng(uint64_t(31 + c + pad));
      Tensor x = random_tensor({3, 9, 8, c}, rng, 1.0);
      Tensor w = random_tensor({32, 3, 3, c}, rng, 0.5);
      Tensor b = random_tensor({32}, rng, 0.1);
      const int oh = (9 + 2 * pad - 2) / 2, ow = (8 + 2 * pad - 2) / 2;
      Tensor dy = random_tensor({3, oh, ow, 32}, rng, 1.0);
      const Result fused =
          run([pad](const Tensor& xi, const Tensor& wi,
                    const Tensor& bi) { return ops::conv2d_max_pool2d(xi, wi, bi, pad, 2); },
              x, w, b, dy);
      const Result plain = run(
          [pad](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
            return ops::max_pool2d(ops::conv2d(xi, wi, bi, 1, pad), 2, 2);
          },
          x, w, b, dy);
      require_near(fused.y, plain.y, 1e-5);
      require_near(fused.dw, plain.dw, 1e-5);
      require_near(fused.db, plain.db, 1e-5);
    }
}

TEST_CASE("conv2d_max_pool2d falls back to the unfused ops when x needs a gradient") {
  Rng rng(5);
  Tensor x = random_tensor({2, 6, 6, 2}, rng, 1.0).set_requires_grad();
  Tensor w = random_tensor({16, 3, 3, 2}, rng, 0.5);
  Tensor b = random_tensor({16}, rng, 0.1);
  Tensor dy = random_tensor({2, 3, 3, 16}, rng, 1.0);
  const Result fused =
      run([](const Tensor& xi, const Tensor& wi,
             const Tensor& bi) { return ops::conv2d_max_pool2d(xi, wi, bi, 1, 2); },
          x, w, b, dy);
  REQUIRE(int64_t(fused.dx.size()) == x.numel());
  x.zero_grad();
  const Result plain =
      run([](const Tensor& xi, const Tensor& wi,
             const Tensor& bi) { return ops::max_pool2d(ops::conv2d(xi, wi, bi, 1, 1), 2, 2); },
          x, w, b, dy);
  require_near(fused.y, plain.y, 0.0);
  require_near(fused.dx, plain.dx, 0.0);
  require_near(fused.dw, plain.dw, 0.0);
}

TEST_CASE("conv2d_max_pool2d refuses inputs with many channels") {
  Rng rng(6);
  Tensor x = random_tensor({1, 6, 6, 8}, rng, 1.0);
  Tensor w = random_tensor({16, 3, 3, 8}, rng, 0.5).set_requires_grad();
  Tensor b = random_tensor({16}, rng, 0.1);
  REQUIRE_THROWS_WITH(ops::conv2d_max_pool2d(x, w, b, 1, 2),
                      Catch::Contains("max_pool2d(conv2d(...))"));
  autograd::clear_tape();
}
