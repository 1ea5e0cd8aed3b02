#include <omp.h>

#include <vector>

#include "kernels/cpu/depthwise.h"
#include "op_reference.h"

using osprey::DepthwiseShape;
using namespace osprey_test;

namespace {

DepthwiseShape make(int n, int h, int w, int c, int kh, int kw, int stride, int pad) {
  DepthwiseShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.kh = kh, s.kw = kw, s.stride = stride, s.pad = pad;
  return s;
}

size_t w_size(const DepthwiseShape& s) {
  return size_t(s.kh) * s.kw * s.c;
}

std::string name(const DepthwiseShape& s) {
  std::ostringstream o;
  o << "n" << s.n << " " << s.h << "x" << s.w << "x" << s.c << " k" << s.kh << "x" << s.kw << " s"
    << s.stride << " p" << s.pad;
  return o.str();
}

// Direct loops: every output, every tap, padding skipped.
std::vector<double> ref_forward(const DepthwiseShape& s, const std::vector<double>& x,
                                const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(size_t(s.output_numel()));
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < s.oh(); ++p)
      for (int q = 0; q < s.ow(); ++q)
        for (int c = 0; c < s.c; ++c) {
          double acc = b.empty() ? 0.0 : b[c];
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = p * s.stride - s.pad + i, iw = q * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              acc += x[((size_t(n) * s.h + ih) * s.w + iw) * s.c + c] * w[(i * s.kw + j) * s.c + c];
            }
          y[((size_t(n) * s.oh() + p) * s.ow() + q) * s.c + c] = acc;
        }
  return y;
}

// The backward as the transpose of the same loops (a scatter), for shapes too large for
// finite differences.
void ref_backward(const DepthwiseShape& s, const std::vector<double>& x,
                  const std::vector<double>& w, const std::vector<double>& dy,
                  std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db) {
  dx.assign(size_t(s.input_numel()), 0.0), dw.assign(w_size(s), 0.0), db.assign(s.c, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < s.oh(); ++p)
      for (int q = 0; q < s.ow(); ++q)
        for (int c = 0; c < s.c; ++c) {
          const double g = dy[((size_t(n) * s.oh() + p) * s.ow() + q) * s.c + c];
          db[c] += g;
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = p * s.stride - s.pad + i, iw = q * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const size_t xi = ((size_t(n) * s.h + ih) * s.w + iw) * s.c + c;
              const size_t wi = (i * s.kw + j) * s.c + c;
              dx[xi] += g * w[wi];
              dw[wi] += g * x[xi];
            }
        }
}

// Batch 1 and 3, odd sizes, channels 1, 3, 5, 17 and 80 (64 + 16: both register-block
// widths), kernels 3x3, 5x5 and 1x3, stride 1 and 2, padding 0, 1 and 2. 4x4 with 1x3 and
// padding 2 has whole windows in the padding.
const std::vector<DepthwiseShape>& small_cases() {
  static const std::vector<DepthwiseShape> all = {
      make(1, 5, 7, 1, 3, 3, 1, 1),  make(3, 4, 4, 3, 3, 3, 2, 1),  make(1, 5, 7, 5, 5, 5, 1, 2),
      make(3, 5, 7, 17, 1, 3, 2, 0), make(1, 4, 4, 17, 3, 3, 1, 0), make(3, 5, 7, 3, 3, 3, 2, 2),
      make(1, 5, 7, 5, 5, 5, 2, 1),  make(2, 7, 5, 17, 3, 3, 1, 1), make(1, 4, 5, 80, 3, 3, 1, 1),
      make(1, 4, 4, 3, 1, 3, 1, 2),  make(1, 6, 6, 17, 3, 3, 2, 1)};
  return all;
}

// MobileNetV2-like: 144 = 64 + 64 + 16 channels, the 3x3 fast paths, several row bands.
const std::vector<DepthwiseShape>& large_cases() {
  static const std::vector<DepthwiseShape> all = {make(2, 16, 16, 144, 3, 3, 1, 1),
                                                  make(2, 16, 16, 144, 3, 3, 2, 1),
                                                  make(3, 9, 11, 37, 5, 5, 2, 2)};
  return all;
}

}  // namespace

TEST_CASE("depthwise forward matches the reference", "[depthwise]") {
  uint32_t seed = 1;
  std::vector<DepthwiseShape> all = small_cases();
  all.insert(all.end(), large_cases().begin(), large_cases().end());
  for (const DepthwiseShape& s : all) {
    const auto x = random_floats(size_t(s.input_numel()), seed++),
               w = random_floats(w_size(s), seed++);
    const auto b = random_floats(s.c, seed++);
    std::vector<float> y(size_t(s.output_numel()), NAN);
    osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    require_close(y, ref_forward(s, to_double(x), to_double(w), to_double(b)), 1e-5, name(s));
    osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), nullptr, y.data());
    require_close(y, ref_forward(s, to_double(x), to_double(w), {}), 1e-5, name(s) + " no bias");
  }
}

TEST_CASE("depthwise backward matches finite differences; dw and db accumulate", "[depthwise]") {
  uint32_t seed = 100;
  for (const DepthwiseShape& s : small_cases()) {
    const auto x = random_floats(size_t(s.input_numel()), seed++),
               w = random_floats(w_size(s), seed++);
    const auto b = random_floats(s.c, seed++), r = random_floats(size_t(s.output_numel()), seed++);
    std::vector<float> dx(size_t(s.input_numel()), NAN), dw(w_size(s), 0.25f), db(s.c, -0.5f);
    osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), r.data(), dx.data(), dw.data(),
                                           db.data());
    auto xd = to_double(x), wd = to_double(w), bd = to_double(b);
    const auto rd = to_double(r);
    auto loss = [&] { return dot(ref_forward(s, xd, wd, bd), rd); };
    // The loss is linear in each of x, w and b, so a large step has no truncation error.
    require_close(dx, numeric_grad(loss, xd, 0.5), 1e-5, name(s) + " dx");
    require_close(minus(dw, 0.25f), numeric_grad(loss, wd, 0.5), 1e-5, name(s) + " dw");
    require_close(minus(db, -0.5f), numeric_grad(loss, bd, 0.5), 1e-5, name(s) + " db");
  }
}

TEST_CASE("depthwise backward matches the reference on MobileNetV2-like shapes", "[depthwise]") {
  uint32_t seed = 200;
  for (const DepthwiseShape& s : large_cases()) {
    const auto x = random_floats(size_t(s.input_numel()), seed++),
               w = random_floats(w_size(s), seed++);
    const auto dy = random_floats(size_t(s.output_numel()), seed++);
    std::vector<float> dx(size_t(s.input_numel()), NAN), dw(w_size(s), 1.0f), db(s.c, 2.0f);
    osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(),
                                           db.data());
    std::vector<double> rdx, rdw, rdb;
    ref_backward(s, to_double(x), to_double(w), to_double(dy), rdx, rdw, rdb);
    require_close(dx, rdx, 1e-5, name(s) + " dx");
    require_close(minus(dw, 1.0f), rdw, 1e-5, name(s) + " dw");
    require_close(minus(db, 2.0f), rdb, 1e-5, name(s) + " db");
  }
}

TEST_CASE("depthwise backward skips null outputs", "[depthwise]") {
  for (const DepthwiseShape& s : {make(3, 5, 7, 17, 3, 3, 2, 1), large_cases()[0]}) {
    INFO(name(s));
    const auto x = random_floats(size_t(s.input_numel()), 300), w = random_floats(w_size(s), 301);
    const auto dy = random_floats(size_t(s.output_numel()), 302);
    auto run = [&](float* dx, float* dw, float* db) {
      osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx, dw, db);
    };
    std::vector<float> dx(size_t(s.input_numel())), dw(w_size(s)), db(s.c);
    run(dx.data(), dw.data(), db.data());
    std::vector<float> dx2(size_t(s.input_numel()), NAN), dw2(w_size(s)), db2(s.c);
    run(dx2.data(), nullptr, nullptr);
    REQUIRE(dx2 == dx);
    run(nullptr, dw2.data(), nullptr);
    // The bias gradient may be summed in another order when dw is not wanted.
    require_close(dw2, to_double(dw), 1e-6, "dw alone");
    run(nullptr, nullptr, db2.data());
    require_close(db2, to_double(db), 1e-6, "db alone");
  }
}

TEST_CASE("depthwise results do not depend on the thread count", "[depthwise]") {
  const int saved = omp_get_max_threads();
  for (const DepthwiseShape& s : large_cases()) {
    INFO(name(s));
    const auto x = random_floats(size_t(s.input_numel()), 400), w = random_floats(w_size(s), 401);
    const auto b = random_floats(s.c, 402), dy = random_floats(size_t(s.output_numel()), 403);
    std::vector<float> y[2], dx[2], dw[2], db[2];
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t + 1);
      y[t].resize(size_t(s.output_numel())), dx[t].resize(size_t(s.input_numel()));
      dw[t].assign(w_size(s), 0.0f), db[t].assign(s.c, 0.0f);
      osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), b.data(), y[t].data());
      osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx[t].data(),
                                             dw[t].data(), db[t].data());
    }
    omp_set_num_threads(saved);
    REQUIRE(y[0] == y[1]);  // each output is computed the same way whatever the split
    REQUIRE(dx[0] == dx[1]);
    require_close(dw[1], to_double(dw[0]), 1e-6, "dw, 2 threads against 1");
    require_close(db[1], to_double(db[0]), 1e-6, "db, 2 threads against 1");
  }
}

TEST_CASE("bf16 depthwise equals the fp32 kernel on the widened inputs, rounded once",
          "[depthwise][bf16]") {
  using osprey::bf16;
  // Large enough that two threads split the work (all but 1x3 at stride 2 with 8 channels) and
  // the backward's images into row bands; odd sizes for the borders. 1x3 with padding 2 has
  // whole windows in the padding.
  struct Kernel {
    int kh, kw, pad;
  };
  const Kernel kernels[] = {{3, 3, 1}, {5, 5, 2}, {1, 3, 2}};
  const int saved = omp_get_max_threads();
  uint32_t seed = 500;
  for (int threads : {1, 2})
    for (int stride : {1, 2})
      for (const Kernel& k : kernels)
        for (int c : {8, 17, 40, 96}) {
          const DepthwiseShape s = make(4, 23, 21, c, k.kh, k.kw, stride, k.pad);
          INFO(name(s) << ", " << threads << " thread(s)");
          omp_set_num_threads(threads);
          const size_t nx = size_t(s.input_numel()), ny = size_t(s.output_numel());
          std::vector<bf16> x(nx), dy(ny);
          auto rx = random_floats(nx, seed++), rdy = random_floats(ny, seed++);
          for (size_t i = 0; i < nx; ++i) x[i] = osprey::to_bf16(rx[i]);
          for (size_t i = 0; i < ny; ++i) dy[i] = osprey::to_bf16(rdy[i]);
          std::vector<float> xf(nx), dyf(ny);
          for (size_t i = 0; i < nx; ++i) xf[i] = osprey::to_float(x[i]);
          for (size_t i = 0; i < ny; ++i) dyf[i] = osprey::to_float(dy[i]);
          const auto w = random_floats(w_size(s), seed++), b = random_floats(s.c, seed++);

          std::vector<float> y_ref(ny), dx_ref(nx), dw_ref(w_size(s), 0.25f), db_ref(s.c, -0.5f);
          osprey::cpu::depthwise_conv2d_forward(s, xf.data(), w.data(), b.data(), y_ref.data());
          osprey::cpu::depthwise_conv2d_backward(s, xf.data(), w.data(), dyf.data(), dx_ref.data(),
                                                 dw_ref.data(), db_ref.data());
          std::vector<bf16> y(ny, bf16{0x7fc0}), dx(nx, bf16{0x7fc0});
          std::vector<float> dw(w_size(s), 0.25f), db(s.c, -0.5f);
          osprey::cpu::depthwise_conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
          osprey::cpu::depthwise_conv2d_backward(s, x.data(), w.data(), dy.data(), dx.data(),
                                                 dw.data(), db.data());
          size_t y_bad = 0, dx_bad = 0;
          for (size_t i = 0; i < ny; ++i) y_bad += y[i].bits != osprey::to_bf16(y_ref[i]).bits;
          for (size_t i = 0; i < nx; ++i) dx_bad += dx[i].bits != osprey::to_bf16(dx_ref[i]).bits;
          CHECK(y_bad == 0);
          CHECK(dx_bad == 0);
          CHECK(dw == dw_ref);  // the same float sums of the same values, in the same order
          CHECK(db == db_ref);
        }
  omp_set_num_threads(saved);
}
