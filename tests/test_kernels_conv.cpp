#include <cstring>
#include <vector>

#include "conv_reference.h"
#include "kernels/cpu/conv.h"
#include "op_reference.h"

using namespace osprey_test;

namespace {

// Odd sizes, batch 1 and 3, strides 1-3, padding 0-2, square and non-square kernels, and
// windows that lie entirely in the padding. The kernel picks its path by shape, and these reach
// each one: direct loops (most), direct dx (C = 16, stride 1), 1x1 GEMM (C = 5, 1x1 s1 p0) and
// im2col + GEMM (KH*KW*C > 1152: C = 130).
const std::vector<Conv2dShape>& cases() {
  static const std::vector<Conv2dShape> all = {
      make(1, 5, 7, 1, 4, 3, 3, 1, 1),  make(3, 5, 7, 3, 5, 3, 3, 2, 1),
      make(1, 5, 7, 5, 3, 1, 1, 1, 0),  make(3, 5, 7, 3, 2, 1, 1, 2, 0),
      make(2, 7, 5, 3, 4, 5, 3, 1, 2),  make(1, 6, 5, 2, 3, 5, 3, 2, 2),
      make(3, 4, 4, 5, 3, 3, 3, 1, 0),  make(1, 5, 7, 3, 2, 3, 3, 3, 2),
      make(1, 3, 3, 1, 2, 1, 1, 2, 2),  make(1, 2, 3, 2, 2, 3, 3, 1, 1),
      make(3, 5, 7, 1, 3, 1, 1, 1, 0),  make(2, 5, 7, 16, 3, 3, 3, 1, 1),
      make(1, 6, 5, 16, 2, 5, 3, 1, 2), make(1, 3, 4, 130, 2, 3, 3, 2, 1),
      make(1, 3, 4, 130, 2, 3, 3, 1, 1)};
  return all;
}

}  // namespace

TEST_CASE("conv2d forward matches direct convolution", "[conv]") {
  uint32_t seed = 1;
  for (const Conv2dShape& s : cases()) {
    for (bool with_bias : {false, true}) {
      const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
      const auto b = random_floats(s.k, seed++);
      std::vector<float> y(y_size(s), NAN);  // poisoned: every output must be written
      osprey::cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
      const auto bd = to_double(b);
      const auto want = ref_forward(s, to_double(x), to_double(w), with_bias ? &bd : nullptr);
      require_close(y, want, 1e-5, name(s) + (with_bias ? " bias" : " no bias"));
    }
  }
}

TEST_CASE("conv2d backward matches finite differences", "[conv]") {
  uint32_t seed = 100;
  for (const Conv2dShape& s : cases()) {
    const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
    const auto b = random_floats(s.k, seed++), r = random_floats(y_size(s), seed++);
    // The scalar L = sum(y * r) has dL/dy = r.
    std::vector<float> dx(x_size(s), NAN), dw(w_size(s), 0.0f), db(s.k, 0.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data());

    auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
    const auto rd = to_double(r);
    auto loss = [&] { return dot(ref_forward(s, xd, wd, &bd), rd); };
    require_close(dx, numeric_grad(loss, xd, 1e-3), 1e-5, name(s) + " dx");
    require_close(dw, numeric_grad(loss, wd, 1e-3), 1e-5, name(s) + " dw");
    require_close(db, numeric_grad(loss, bd, 1e-3), 1e-5, name(s) + " db");
  }
}

TEST_CASE("conv2d backward agrees with finite differences of the float kernel", "[conv]") {
  // Ties the kernel's own forward and backward together, independent of the reference loops.
  const Conv2dShape s = make(2, 5, 7, 3, 4, 3, 3, 2, 1);
  const auto x = random_floats(x_size(s), 7), w = random_floats(w_size(s), 8);
  const auto r = to_double(random_floats(y_size(s), 9));
  std::vector<float> dx(x_size(s)), dw(w_size(s), 0.0f);
  osprey::cpu::conv2d_backward(s, x.data(), w.data(), std::vector<float>(r.begin(), r.end()).data(),
                               dx.data(), dw.data(), nullptr);
  auto xd = to_double(x);
  std::vector<float> xf(x), y(y_size(s));
  auto loss = [&] {
    for (size_t i = 0; i < xd.size(); ++i) xf[i] = static_cast<float>(xd[i]);
    osprey::cpu::conv2d_forward(s, xf.data(), w.data(), nullptr, y.data());
    double l = 0.0;
    for (size_t i = 0; i < y.size(); ++i) l += y[i] * r[i];
    return l;
  };
  require_close(dx, numeric_grad(loss, xd, 1e-2), 1e-3, "float fd dx");
}

TEST_CASE("conv2d backward accumulates dw and db and skips null outputs", "[conv]") {
  // Covers the direct, direct-dx, 1x1 and im2col paths.
  for (const Conv2dShape& s :
       {make(3, 5, 7, 3, 5, 3, 3, 2, 1), make(2, 5, 7, 16, 3, 3, 3, 1, 1),
        make(3, 5, 7, 5, 3, 1, 1, 1, 0), make(1, 3, 4, 130, 2, 3, 3, 1, 1)}) {
    const auto x = random_floats(x_size(s), 11), w = random_floats(w_size(s), 12);
    const auto dy = random_floats(y_size(s), 13);
    std::vector<float> dx(x_size(s)), dw(w_size(s), 0.0f), db(s.k, 0.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());

    std::vector<float> dw2(w_size(s), 0.5f), db2(s.k, -0.25f), dx2(x_size(s), 123.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx2.data(), dw2.data(),
                                 db2.data());
    std::vector<double> want_w(dw.begin(), dw.end()), want_b(db.begin(), db.end());
    for (double& v : want_w) v += 0.5;
    for (double& v : want_b) v -= 0.25;
    require_close(dw2, want_w, 1e-6, name(s) + " dw accumulates");
    require_close(db2, want_b, 1e-6, name(s) + " db accumulates");
    require_close(dx2, to_double(dx), 0.0, name(s) + " dx overwritten");

    // Each output alone, the others null: same values, and nothing else is touched.
    std::vector<float> only(x_size(s), NAN);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), only.data(), nullptr, nullptr);
    require_close(only, to_double(dx), 0.0, name(s) + " dx only");
    std::vector<float> only_w(w_size(s), 0.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, only_w.data(), nullptr);
    require_close(only_w, to_double(dw), 0.0, name(s) + " dw only");
    std::vector<float> only_b(s.k, 0.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, nullptr, only_b.data());
    require_close(only_b, to_double(db), 0.0, name(s) + " db only");
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), nullptr, nullptr, nullptr);
  }
}

TEST_CASE("conv2d splits a large batch into chunks without changing the result", "[conv]") {
  // A 3x3 patch of 160 channels takes the im2col path; one image's im2col is ~13 MB, so a 32 MB
  // scratch holds 2 of the 3 images: two chunks of different sizes. Each output sums 1440
  // products, so outputs that nearly cancel need a looser bound than the small cases.
  const Conv2dShape s = make(3, 48, 48, 160, 2, 3, 3, 1, 1);
  const auto x = random_floats(x_size(s), 21), w = random_floats(w_size(s), 22);
  const auto b = random_floats(s.k, 23), dy = random_floats(y_size(s), 24);
  std::vector<float> y(y_size(s), NAN);
  osprey::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
  require_close(y, ref_forward(s, xd, wd, &bd), 1e-4, "chunked forward");

  std::vector<float> dx(x_size(s), NAN), dw(w_size(s), 0.0f), db(s.k, 0.0f);
  osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  std::vector<double> rdx, rdw, rdb;
  ref_backward(s, xd, wd, to_double(dy), rdx, rdw, rdb);
  require_close(dx, rdx, 1e-4, "chunked dx");
  require_close(dw, rdw, 1e-4, "chunked dw");
  require_close(db, rdb, 1e-4, "chunked db");
}

TEST_CASE("conv2d direct kernels: every channel tier and pixel remainder", "[conv]") {
  // Output channel counts that leave blocks of 64, 32, 16 and a scalar tail, rows whose width is
  // not a multiple of the pixel tile, kernel rows (KW*C taps) that are not a multiple of the tap
  // tile, and the direct dx kernel with several channel widths.
  uint32_t seed = 40;
  for (const Conv2dShape& s :
       {make(2, 6, 9, 8, 117, 3, 3, 1, 1), make(1, 5, 13, 32, 45, 3, 3, 1, 1),
        make(2, 7, 7, 24, 64, 3, 3, 1, 0), make(1, 5, 7, 16, 16, 5, 3, 1, 2),
        make(1, 9, 11, 40, 7, 3, 3, 2, 1), make(2, 5, 7, 5, 17, 3, 3, 1, 1),
        make(3, 7, 6, 1, 33, 3, 3, 1, 1)}) {
    const auto x = random_floats(x_size(s), seed++), w = random_floats(w_size(s), seed++);
    const auto b = random_floats(s.k, seed++), dy = random_floats(y_size(s), seed++);
    const auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
    std::vector<float> y(y_size(s), NAN);
    osprey::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    require_close(y, ref_forward(s, xd, wd, &bd), 1e-5, name(s) + " forward");
    std::vector<float> dx(x_size(s), NAN), dw(w_size(s), 0.0f), db(s.k, 0.0f);
    osprey::cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    std::vector<double> rdx, rdw, rdb;
    ref_backward(s, xd, wd, to_double(dy), rdx, rdw, rdb);
    require_close(dx, rdx, 1e-5, name(s) + " dx");
    require_close(dw, rdw, 1e-5, name(s) + " dw");
    require_close(db, rdb, 1e-5, name(s) + " db");
  }
}

TEST_CASE("conv2d reference backward agrees with finite differences", "[conv]") {
  // The chunked test above trusts ref_backward; this makes that trust checkable.
  const Conv2dShape s = make(2, 5, 7, 3, 2, 5, 3, 2, 2);
  auto xd = to_double(random_floats(x_size(s), 31)), wd = to_double(random_floats(w_size(s), 32));
  const auto rd = to_double(random_floats(y_size(s), 33));
  std::vector<double> dx, dw, db;
  ref_backward(s, xd, wd, rd, dx, dw, db);
  auto loss = [&] { return dot(ref_forward(s, xd, wd, nullptr), rd); };
  const auto fx = numeric_grad(loss, xd, 1e-3), fw = numeric_grad(loss, wd, 1e-3);
  for (size_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == Approx(fx[i]).margin(1e-9));
  for (size_t i = 0; i < dw.size(); ++i) REQUIRE(dw[i] == Approx(fw[i]).margin(1e-9));
}
