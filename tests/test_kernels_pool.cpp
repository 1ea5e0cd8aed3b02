#include <limits>
#include <tuple>
#include <vector>

#include "kernels/cpu/pool.h"
#include "op_reference.h"

using osprey::Pool2dShape;
using namespace osprey_test;

namespace {

Pool2dShape make(int n, int h, int w, int c, int kh, int kw, int stride, int pad) {
  Pool2dShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.kh = kh, s.kw = kw, s.stride = stride, s.pad = pad;
  return s;
}

size_t in_size(const Pool2dShape& s) {
  return size_t(s.n) * s.h * s.w * s.c;
}
size_t out_size(const Pool2dShape& s) {
  return size_t(s.n) * s.oh() * s.ow() * s.c;
}

// Scans each window in (row, column) order with a strict '>', skipping padded taps.
void ref_pool(const Pool2dShape& s, const std::vector<double>& x, std::vector<double>& y,
              std::vector<int32_t>& arg) {
  const int oh = s.oh(), ow = s.ow();
  y.assign(out_size(s), 0.0), arg.assign(out_size(s), -1);
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < oh; ++p)
      for (int q = 0; q < ow; ++q)
        for (int c = 0; c < s.c; ++c) {
          double best = -std::numeric_limits<double>::infinity();
          int32_t where = -1;
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = p * s.stride - s.pad + i, iw = q * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const double v = x[((size_t(n) * s.h + ih) * s.w + iw) * s.c + c];
              if (where < 0 || v > best) best = v, where = ih * s.w + iw;
            }
          const size_t o = ((size_t(n) * oh + p) * ow + q) * s.c + c;
          y[o] = best, arg[o] = where;
        }
}

// Includes stride != kernel (overlapping and gapped windows), padding, non-square windows,
// batch 1 and 3, and odd sizes.
const std::vector<Pool2dShape>& cases() {
  static const std::vector<Pool2dShape> all = {
      make(1, 5, 7, 1, 2, 2, 2, 0), make(3, 5, 7, 3, 3, 3, 2, 1),   make(2, 7, 5, 5, 3, 2, 1, 1),
      make(1, 6, 6, 2, 2, 2, 2, 1), make(1, 5, 7, 3, 3, 3, 3, 0),   make(3, 7, 7, 4, 2, 2, 3, 0),
      make(3, 5, 7, 2, 2, 3, 2, 1), make(2, 28, 28, 32, 2, 2, 2, 0)};
  return all;
}

std::string name(const Pool2dShape& s) {
  std::ostringstream o;
  o << "n" << s.n << " " << s.h << "x" << s.w << "x" << s.c << " " << s.kh << "x" << s.kw << " s"
    << s.stride << " p" << s.pad;
  return o.str();
}

}  // namespace

TEST_CASE("maxpool forward matches the reference, values and argmax", "[pool]") {
  uint32_t seed = 1;
  for (const Pool2dShape& s : cases()) {
    const auto x = random_floats(in_size(s), seed++);
    std::vector<float> y(out_size(s), NAN);
    std::vector<int32_t> arg(out_size(s), -7);
    osprey::cpu::maxpool2d_forward(s, x.data(), y.data(), arg.data());
    std::vector<double> ry;
    std::vector<int32_t> rarg;
    ref_pool(s, to_double(x), ry, rarg);
    require_close(y, ry, 0.0, name(s));
    INFO(name(s));
    REQUIRE(arg == rarg);
  }
}

TEST_CASE("maxpool backward matches finite differences", "[pool]") {
  uint32_t seed = 50;
  for (const Pool2dShape& s : cases()) {
    if (in_size(s) > 2000) continue;  // finite differences only on the small shapes
    const auto x = random_floats(in_size(s), seed++), r = random_floats(out_size(s), seed++);
    std::vector<float> y(out_size(s)), dx(in_size(s), NAN);
    std::vector<int32_t> arg(out_size(s));
    osprey::cpu::maxpool2d_forward(s, x.data(), y.data(), arg.data());
    osprey::cpu::maxpool2d_backward(s, r.data(), arg.data(), dx.data());
    auto xd = to_double(x);
    const auto rd = to_double(r);
    std::vector<double> ry;
    std::vector<int32_t> rarg;
    auto loss = [&] {
      ref_pool(s, xd, ry, rarg);
      return dot(ry, rd);
    };
    // Random inputs are distinct, so a small step never changes which input wins.
    require_close(dx, numeric_grad(loss, xd, 1e-6), 1e-6, name(s));
  }
}

TEST_CASE("maxpool: padding never wins, ties keep the first maximum, NaN propagates", "[pool]") {
  const Pool2dShape s = make(1, 3, 3, 2, 3, 3, 2, 1);  // 2x2 output, every window padded
  std::vector<float> x(in_size(s), -5.0f);             // all equal and below the 0 of padding
  std::vector<float> y(out_size(s));
  std::vector<int32_t> arg(out_size(s));
  osprey::cpu::maxpool2d_forward(s, x.data(), y.data(), arg.data());
  for (float v : y) REQUIRE(v == -5.0f);
  // Window (0,0) covers input rows/cols 0..1, window (1,1) rows/cols 1..2.
  REQUIRE(arg == std::vector<int32_t>{0, 0, 1, 1, 3, 3, 4, 4});

  x[(1 * 3 + 1) * 2 + 1] = NAN;  // centre pixel, channel 1: in every window
  osprey::cpu::maxpool2d_forward(s, x.data(), y.data(), arg.data());
  for (int o = 0; o < 4; ++o) {
    REQUIRE(y[o * 2] == -5.0f);
    REQUIRE(std::isnan(y[o * 2 + 1]));
    REQUIRE(arg[o * 2 + 1] == 4);
  }
}

TEST_CASE("maxpool backward overwrites dx and sums overlapping windows", "[pool]") {
  // 3x3 windows at stride 1 over a 3x4 input: the largest input wins both windows.
  const Pool2dShape s = make(1, 3, 4, 1, 3, 3, 1, 0);
  std::vector<float> x = {0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0};
  std::vector<float> y(2), dx(12, 42.0f), dy = {1.5f, 2.0f};
  std::vector<int32_t> arg(2);
  osprey::cpu::maxpool2d_forward(s, x.data(), y.data(), arg.data());
  osprey::cpu::maxpool2d_backward(s, dy.data(), arg.data(), dx.data());
  std::vector<float> want(12, 0.0f);
  want[5] = 3.5f;
  REQUIRE(dx == want);
}

TEST_CASE("global average pooling forward and backward", "[pool]") {
  for (auto shape : {std::tuple{1, 1, 3}, std::tuple{3, 7, 5}, std::tuple{2, 49, 1280}}) {
    const int n = std::get<0>(shape), hw = std::get<1>(shape), c = std::get<2>(shape);
    const auto x = random_floats(size_t(n) * hw * c, 70), r = random_floats(size_t(n) * c, 71);
    std::vector<float> y(size_t(n) * c, NAN), dx(x.size(), NAN);
    osprey::cpu::global_avg_pool_forward(n, hw, c, x.data(), y.data());
    osprey::cpu::global_avg_pool_backward(n, hw, c, r.data(), dx.data());
    auto xd = to_double(x);
    const auto rd = to_double(r);
    std::vector<double> want(size_t(n) * c);
    auto forward = [&] {
      std::fill(want.begin(), want.end(), 0.0);
      for (int i = 0; i < n; ++i)
        for (int p = 0; p < hw; ++p)
          for (int ch = 0; ch < c; ++ch)
            want[size_t(i) * c + ch] += xd[(size_t(i) * hw + p) * c + ch] / hw;
      return dot(want, rd);
    };
    forward();
    const std::string tag = "gap n" + std::to_string(n) + " hw" + std::to_string(hw);
    require_close(y, want, 1e-6, tag + " forward");
    if (x.size() < 2000) {
      require_close(dx, numeric_grad(forward, xd, 1e-3), 1e-6, tag + " dx");
    } else {  // too big for differences: every pixel gets its image's dy / hw
      std::vector<double> spread(x.size());
      for (size_t e = 0; e < x.size(); ++e) spread[e] = rd[e / (size_t(hw) * c) * c + e % c] / hw;
      require_close(dx, spread, 1e-6, tag + " dx");
    }
  }
}
