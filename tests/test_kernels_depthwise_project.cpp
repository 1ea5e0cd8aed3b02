#include <omp.h>

#include <vector>

#include "kernels/cpu/depthwise_project.h"
#include "op_reference.h"

using osprey::Activation;
using osprey::DepthwiseShape;
using namespace osprey_test;

namespace {

struct Case {
  DepthwiseShape s;
  int k;
  Activation act;
  bool residual;
};

// Direct double loops: depthwise + bias, activation, 1x1 projection + bias, residual.
std::vector<double> reference(const Case& t, const std::vector<float>& x,
                              const std::vector<float>& dw_w, const std::vector<float>& dw_b,
                              const std::vector<float>& pw, const std::vector<float>& pb,
                              const std::vector<float>& res) {
  const DepthwiseShape& s = t.s;
  const int oh_n = s.oh(), ow_n = s.ow();
  std::vector<double> y(size_t(s.n) * oh_n * ow_n * t.k);
  std::vector<double> d(size_t(s.c));
  for (int n = 0; n < s.n; ++n)
    for (int oh = 0; oh < oh_n; ++oh)
      for (int ow = 0; ow < ow_n; ++ow) {
        for (int c = 0; c < s.c; ++c) {
          double acc = dw_b[size_t(c)];
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              acc += double(x[((size_t(n) * s.h + ih) * s.w + iw) * s.c + c]) *
                     dw_w[(size_t(i) * s.kw + j) * s.c + c];
            }
          if (t.act != Activation::none) acc = std::max(acc, 0.0);
          if (t.act == Activation::relu6) acc = std::min(acc, 6.0);
          d[size_t(c)] = acc;
        }
        const size_t q = (size_t(n) * oh_n + oh) * ow_n + ow;
        for (int o = 0; o < t.k; ++o) {
          double acc = pb[size_t(o)] + (t.residual ? double(res[q * t.k + o]) : 0.0);
          for (int c = 0; c < s.c; ++c) acc += d[size_t(c)] * pw[size_t(c) * t.k + o];
          y[q * t.k + o] = acc;
        }
      }
  return y;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  // Odd sizes and channel counts (not multiples of the kernels' 16-channel blocks), both
  // strides, padding 0 and 1, one image with a single row, and MobileNetV2-like widths.
  out.push_back({{2, 7, 9, 19, 3, 3, 1, 1}, 13, Activation::relu6, false});
  out.push_back({{3, 9, 6, 33, 3, 3, 2, 1}, 7, Activation::relu6, false});
  out.push_back({{1, 5, 5, 24, 3, 3, 1, 0}, 5, Activation::relu, false});
  out.push_back({{2, 1, 11, 17, 3, 3, 1, 1}, 17, Activation::none, true});
  out.push_back({{4, 8, 8, 96, 3, 3, 1, 1}, 24, Activation::relu6, true});
  out.push_back({{2, 16, 16, 144, 3, 3, 2, 1}, 32, Activation::relu6, false});
  // Tiles span several output rows and end mid-image: 40*40*150 floats > one tile.
  out.push_back({{2, 40, 40, 150, 3, 3, 1, 1}, 21, Activation::relu6, true});
  return out;
}

}  // namespace

TEST_CASE("fused depthwise + projection matches the two stages in double", "[depthwise]") {
  uint32_t seed = 1;
  for (const Case& t : cases()) {
    const DepthwiseShape& s = t.s;
    const size_t out = size_t(s.n) * s.oh() * s.ow() * t.k;
    const auto x = random_floats(size_t(s.n) * s.h * s.w * s.c, seed++, -2.0f, 4.0f);
    const auto dw_w = random_floats(size_t(s.kh) * s.kw * s.c, seed++);
    const auto dw_b = random_floats(size_t(s.c), seed++);
    const auto pw = random_floats(size_t(s.c) * t.k, seed++);
    const auto pb = random_floats(size_t(t.k), seed++);
    const auto res = t.residual ? random_floats(out, seed++) : std::vector<float>{};
    std::vector<float> y(out, NAN);
    osprey::cpu::depthwise_project_forward(s, t.k, x.data(), dw_w.data(), dw_b.data(), t.act,
                                           pw.data(), pb.data(), t.residual ? res.data() : nullptr,
                                           y.data());
    require_close(y, reference(t, x, dw_w, dw_b, pw, pb, res), 1e-5,
                  "depthwise+project " + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                      std::to_string(s.c) + " -> " + std::to_string(t.k));
  }
}

TEST_CASE("fused depthwise + projection takes null biases and any thread count", "[depthwise]") {
  const Case t{{3, 20, 20, 200, 3, 3, 1, 1}, 9, Activation::relu6, false};
  const DepthwiseShape& s = t.s;
  const size_t out = size_t(s.n) * s.oh() * s.ow() * t.k;
  const auto x = random_floats(size_t(s.n) * s.h * s.w * s.c, 7);
  const auto dw_w = random_floats(size_t(9) * s.c, 8);
  const auto pw = random_floats(size_t(s.c) * t.k, 9);
  const std::vector<float> zero_c(size_t(s.c), 0.0f), zero_k(size_t(t.k), 0.0f);
  const std::vector<double> want = reference(t, x, dw_w, zero_c, pw, zero_k, {});
  const int saved = omp_get_max_threads();
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> y(out, NAN);
    osprey::cpu::depthwise_project_forward(s, t.k, x.data(), dw_w.data(), nullptr, t.act, pw.data(),
                                           nullptr, nullptr, y.data());
    require_close(y, want, 1e-5, "null biases, " + std::to_string(threads) + " threads");
    if (first.empty()) first = y;
    // Each tile's sums run in the same order on any thread: bit-identical results.
    REQUIRE(y == first);
  }
  omp_set_num_threads(saved);
}
