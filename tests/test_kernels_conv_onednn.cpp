// The oneDNN convolution path (kernels/cpu/conv_onednn.h) against the double-precision
// reference, with the tolerances of test_kernels_conv.cpp, and the per-pass choice between it
// and ours in conv2d_forward / conv2d_backward.
#include <cmath>
#include <vector>

#include "conv_reference.h"
#include "kernels/cpu/conv_detail.h"
#include "kernels/cpu/conv_onednn.h"
#include "op_reference.h"

using namespace osprey_test;
using osprey::cpu::onednn_conv2d_backward;
using osprey::cpu::onednn_conv2d_forward;

namespace {

// Stride 1 and 2, padding 0 and 1, batch 1 and 3, 1 to 32 input channels (a stem's 1 and 3,
// one not a multiple of a vector, whole vectors), output channels below, at and past a vector,
// 3x3 and 1x1 kernels, odd and non-square images.
const std::vector<Conv2dShape>& cases() {
  static const std::vector<Conv2dShape> all = {
      make(1, 7, 6, 1, 32, 3, 3, 1, 1),  make(3, 7, 6, 3, 32, 3, 3, 2, 1),
      make(3, 5, 7, 5, 17, 3, 3, 1, 0),  make(1, 9, 8, 16, 16, 3, 3, 2, 0),
      make(3, 6, 6, 32, 64, 3, 3, 1, 1), make(1, 5, 7, 32, 24, 3, 3, 2, 1),
      make(3, 4, 5, 24, 40, 1, 1, 1, 0), make(1, 7, 5, 3, 8, 1, 1, 2, 0)};
  return all;
}

}  // namespace

TEST_CASE("oneDNN conv2d forward matches direct convolution", "[conv][onednn]") {
  uint32_t seed = 300;
  for (const Conv2dShape& s : cases()) {
    for (bool with_bias : {false, true}) {
      const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
      const auto b = random_floats(s.k, seed++);
      std::vector<float> y(y_size(s), NAN);  // poisoned: every output must be written
      onednn_conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
      const auto bd = to_double(b);
      const auto want = ref_forward(s, to_double(x), to_double(w), with_bias ? &bd : nullptr);
      require_close(y, want, 1e-5, name(s) + (with_bias ? " bias" : " no bias"));
    }
  }
}

TEST_CASE("oneDNN conv2d backward matches the reference gradients", "[conv][onednn]") {
  uint32_t seed = 400;
  for (const Conv2dShape& s : cases()) {
    const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
    const auto dy = random_floats(y_size(s), seed++);
    std::vector<double> rdx, rdw, rdb;
    ref_backward(s, to_double(x), to_double(w), to_double(dy), rdx, rdw, rdb);

    // dx overwritten; dw accumulated onto what the caller holds.
    std::vector<float> dx(x_size(s), NAN), dw(w_size(s), 0.5f);
    onednn_conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data());
    for (double& v : rdw) v += 0.5;
    require_close(dx, rdx, 1e-5, name(s) + " dx");
    require_close(dw, rdw, 1e-5, name(s) + " dw");

    // Each output alone, the other null: the same values.
    std::vector<float> only_x(x_size(s), NAN), only_w(w_size(s), 0.5f);
    onednn_conv2d_backward(s, x.data(), w.data(), dy.data(), only_x.data(), nullptr);
    onednn_conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, only_w.data());
    require_close(only_x, to_double(dx), 0.0, name(s) + " dx only");
    require_close(only_w, to_double(dw), 0.0, name(s) + " dw only");
  }
}

TEST_CASE("conv2d picks oneDNN for the passes the rule names", "[conv][onednn]") {
  using osprey::cpu::ConvPass;
  using osprey::cpu::onednn_conv_faster;
  auto picks = [](const Conv2dShape& s) {
    return std::vector<bool>{onednn_conv_faster(s, ConvPass::forward),
                             onednn_conv_faster(s, ConvPass::data),
                             onednn_conv_faster(s, ConvPass::weights)};
  };
  const std::vector<bool> all{true, true, true}, weights{false, false, true}, none(3, false);
  CHECK(picks(make(64, 14, 14, 32, 64, 3, 3, 1, 1)) == all);     // simple_cnn conv2
  CHECK(picks(make(64, 28, 28, 1, 32, 3, 3, 1, 1)) == weights);  // simple_cnn conv1
  CHECK(picks(make(64, 32, 32, 3, 32, 3, 3, 1, 1)) == weights);  // the CIFAR stem
  CHECK(picks(make(64, 32, 32, 16, 96, 1, 1, 1, 0)) == none);    // a 1x1: the GEMM path
  CHECK(picks(make(16, 224, 224, 3, 32, 3, 3, 2, 1)) == none);   // the 224 stem
  CHECK(picks(make(64, 14, 14, 32, 64, 3, 3, 1, 0)) == none);    // not measured
  CHECK(picks(make(0, 14, 14, 32, 64, 3, 3, 1, 1)) == none);     // empty
}

TEST_CASE("conv2d on the oneDNN path matches direct convolution", "[conv][onednn]") {
  // Shapes of each branch of the rule through the public entry points, with bias: dw and db
  // accumulate, dx is overwritten, whichever side runs each pass.
  uint32_t seed = 500;
  for (const Conv2dShape& s : {make(3, 6, 7, 32, 24, 3, 3, 1, 1), make(1, 5, 5, 8, 17, 3, 3, 1, 1),
                               make(3, 7, 6, 3, 32, 3, 3, 1, 1), make(1, 6, 6, 1, 16, 3, 3, 1, 1),
                               make(3, 5, 6, 2, 8, 3, 3, 1, 1)}) {
    const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
    const auto b = random_floats(s.k, seed++), dy = random_floats(y_size(s), seed++);
    const auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
    std::vector<float> y(y_size(s), NAN);
    osprey::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    require_close(y, ref_forward(s, xd, wd, &bd), 1e-5, name(s) + " forward");

    std::vector<float> dx(x_size(s), NAN), dw(w_size(s), 0.5f), db(s.k, -0.25f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    std::vector<double> rdx, rdw, rdb;
    ref_backward(s, xd, wd, to_double(dy), rdx, rdw, rdb);
    for (double& v : rdw) v += 0.5;
    for (double& v : rdb) v -= 0.25;
    require_close(dx, rdx, 1e-5, name(s) + " dx");
    require_close(dw, rdw, 1e-5, name(s) + " dw");
    require_close(db, rdb, 1e-5, name(s) + " db");

    std::vector<float> only_b(s.k, -0.25f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, nullptr, only_b.data());
    require_close(only_b, to_double(db), 0.0, name(s) + " db only");
  }
}
