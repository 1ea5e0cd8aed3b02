// bf16 storage: the rounding itself, and the bf16 overloads of the CPU kernels (float
// arithmetic on widened operands, one rounding per stored value) against double references.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm_bf16.h"
#include "op_reference.h"

using osprey::bf16;
using osprey::to_bf16;
using osprey::to_float;
using namespace osprey_test;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The bf16 nearest to f >= 0 by comparison in double: both neighbours of f's truncation, ties
// to the even mantissa. Above the largest finite bf16 the upper neighbour is infinity, which
// IEEE rounding treats as 2^128 (the next value the format would have).
uint16_t nearest_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t lo = uint16_t(u >> 16), hi = uint16_t(lo + 1);
  const double vhi = hi == 0x7f80 ? std::ldexp(1.0, 128) : double(from_bits(uint32_t(hi) << 16));
  const double dlo = std::abs(double(f) - double(from_bits(uint32_t(lo) << 16)));
  const double dhi = std::abs(vhi - double(f));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

std::vector<bf16> to_bf16_vector(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  osprey::cpu::cast(int64_t(v.size()), v.data(), out.data());
  return out;
}

std::vector<float> widen(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  osprey::cpu::cast(int64_t(v.size()), v.data(), out.data());
  return out;
}

// Random values already representable in bf16 (what bf16 activations hold).
std::vector<float> bf16_values(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return widen(to_bf16_vector(random_floats(n, seed, lo, hi)));
}

}  // namespace

TEST_CASE("bf16 rounds to nearest, ties to even, and keeps NaN, infinities and signs", "[bf16]") {
  REQUIRE(to_bf16(1.0f).bits == 0x3f80);
  REQUIRE(to_bf16(-2.0f).bits == 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  REQUIRE(to_bf16(1.0f + std::ldexp(1.0f, -8)).bits == 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even one.
  REQUIRE(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)).bits == 0x3f82);
  REQUIRE(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)).bits == 0x3f81);
  REQUIRE(to_bf16(-0.0f).bits == 0x8000);
  REQUIRE(to_bf16(std::numeric_limits<float>::infinity()).bits == 0x7f80);
  REQUIRE(to_bf16(-std::numeric_limits<float>::infinity()).bits == 0xff80);
  // The largest floats round past bf16's largest finite value to infinity, as IEEE rounding does.
  REQUIRE(to_bf16(std::numeric_limits<float>::max()).bits == 0x7f80);
  REQUIRE(std::isnan(to_float(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low bits must not round into infinity.
  REQUIRE(std::isnan(to_float(to_bf16(from_bits(0x7f800001u)))));
  REQUIRE(std::isnan(to_float(to_bf16(from_bits(0xffffffffu)))));
  // Subnormals round like any other value.
  REQUIRE(to_bf16(from_bits(0x00008000u)).bits == 0x0000);
  REQUIRE(to_bf16(from_bits(0x00018000u)).bits == 0x0002);
  REQUIRE(to_float(bf16{0x4049}) == 3.140625f);
}

TEST_CASE("bf16 rounding agrees with an exhaustive nearest search on random floats", "[bf16]") {
  std::mt19937 gen(5);
  std::uniform_int_distribution<uint32_t> bits(0, 0x7f7fffffu);  // finite, positive
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = bits(gen) | (i % 2 ? 0x80000000u : 0u);
    const float f = from_bits(u);
    INFO("float bits " << std::hex << u);
    REQUIRE(to_bf16(f).bits == uint16_t(nearest_bf16(std::abs(f)) | (i % 2 ? 0x8000 : 0)));
  }
}

TEST_CASE("bf16 elementwise kernels round each result once", "[bf16]") {
  const auto a = bf16_values(1001, 1), b = bf16_values(1001, 2);
  const auto ah = to_bf16_vector(a), bh = to_bf16_vector(b);
  std::vector<bf16> y(a.size()), acc = bh;
  osprey::cpu::add(int64_t(a.size()), ah.data(), bh.data(), y.data());
  osprey::cpu::axpy(int64_t(a.size()), -0.5f, ah.data(), acc.data());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(y[i].bits == to_bf16(a[i] + b[i]).bits);
    REQUIRE(acc[i].bits == to_bf16(b[i] + -0.5f * a[i]).bits);
  }
}

TEST_CASE("bf16 convolutions and BatchNorm stay within bf16 rounding of double references",
          "[bf16]") {
  using osprey::Activation;
  // A dense 3x3 conv: forward and both gradients against the fp32 kernel on the same
  // (bf16-valued) inputs and bf16-rounded weights, in double where it matters.
  osprey::Conv2dShape s{2, 7, 6, 5, 9, 3, 3, 2, 1};
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.k;
  const auto x = bf16_values(nx, 3), dy = bf16_values(ny, 4);
  const auto w = random_floats(size_t(s.k) * 9 * s.c, 5);
  std::vector<float> w16(w.size());
  for (size_t i = 0; i < w.size(); ++i) w16[i] = to_float(to_bf16(w[i]));
  std::vector<float> y_ref(ny), dx_ref(nx), dw_ref(w.size(), 0.0f), dw(w.size(), 0.0f);
  osprey::cpu::conv2d_forward(s, x.data(), w16.data(), nullptr, y_ref.data());
  osprey::cpu::conv2d_backward(s, x.data(), w16.data(), dy.data(), dx_ref.data(), dw_ref.data(),
                               nullptr);
  std::vector<bf16> y(ny), dx(nx);
  osprey::cpu::conv2d_forward(s, to_bf16_vector(x).data(), w.data(), nullptr, y.data());
  osprey::cpu::conv2d_backward(s, to_bf16_vector(x).data(), w.data(), to_bf16_vector(dy).data(),
                               dx.data(), dw.data(), nullptr);
  // One rounding: at most half a bf16 step (2^-8 relative) from the float result.
  require_close(widen(y), to_double(y_ref), 1.0 / 256, "bf16 conv forward");
  require_close(widen(dx), to_double(dx_ref), 1.0 / 256, "bf16 conv input gradient");
  REQUIRE(dw == dw_ref);  // the same float sums on the same values: identical

  // Depthwise: the weights are used as they are (not rounded).
  osprey::DepthwiseShape d{2, 9, 8, 12, 3, 3, 2, 1};
  const size_t dnx = size_t(d.n) * d.h * d.w * d.c, dny = size_t(d.n) * d.oh() * d.ow() * d.c;
  const auto dxv = bf16_values(dnx, 6), ddy = bf16_values(dny, 7);
  const auto dwt = random_floats(9 * size_t(d.c), 8);
  std::vector<float> dy_ref(dny), dgx_ref(dnx);
  osprey::cpu::depthwise_conv2d_forward(d, dxv.data(), dwt.data(), nullptr, dy_ref.data());
  osprey::cpu::depthwise_conv2d_backward(d, dxv.data(), dwt.data(), ddy.data(), dgx_ref.data(),
                                         nullptr, nullptr);
  std::vector<bf16> dyh(dny), dgx(dnx);
  osprey::cpu::depthwise_conv2d_forward(d, to_bf16_vector(dxv).data(), dwt.data(), nullptr,
                                        dyh.data());
  osprey::cpu::depthwise_conv2d_backward(d, to_bf16_vector(dxv).data(), dwt.data(),
                                         to_bf16_vector(ddy).data(), dgx.data(), nullptr, nullptr);
  require_close(widen(dyh), to_double(dy_ref), 1.0 / 256, "bf16 depthwise forward");
  require_close(widen(dgx), to_double(dgx_ref), 1.0 / 256, "bf16 depthwise input gradient");

  // BatchNorm + ReLU6, training mode: the mask comes from float pre-activations, so an output
  // that rounds to 6.0 in bf16 still passes its gradient when its float value is below 6.
  const int64_t m = 40;
  const int c = 3;
  std::vector<float> z = bf16_values(size_t(m) * c, 9, -3.0f, 3.0f);
  // Channel 1 puts its pre-activations at 5.985 +- 0.01: about half lie in (5.984375, 6), which
  // bf16 rounds to 6.0.
  const std::vector<float> gamma = {2.0f, 0.01f, 0.5f}, beta = {3.0f, 5.985f, 0.0f};
  std::vector<float> mean(c), var(c), mean_ref(c), var_ref(c);
  osprey::cpu::batchnorm_stats(m, c, to_bf16_vector(z).data(), mean.data(), var.data());
  osprey::cpu::batchnorm_stats(m, c, z.data(), mean_ref.data(), var_ref.data());
  REQUIRE(mean == mean_ref);
  REQUIRE(var == var_ref);
  std::vector<float> yf(z.size()), gz_ref(z.size()), g_ref(2 * c, 0.0f);
  osprey::cpu::batchnorm_act_forward(m, c, z.data(), mean.data(), var.data(), gamma.data(),
                                     beta.data(), 1e-5f, Activation::relu6, yf.data());
  const auto g = bf16_values(z.size(), 10);
  osprey::cpu::batchnorm_act_backward(m, c, z.data(), g.data(), mean.data(), var.data(),
                                      gamma.data(), beta.data(), 1e-5f, Activation::relu6, true,
                                      gz_ref.data(), g_ref.data(), g_ref.data() + c);
  std::vector<bf16> yh(z.size()), gz(z.size());
  std::vector<float> grads(2 * c, 0.0f);
  osprey::cpu::batchnorm_act_forward(m, c, to_bf16_vector(z).data(), mean.data(), var.data(),
                                     gamma.data(), beta.data(), 1e-5f, Activation::relu6,
                                     yh.data());
  osprey::cpu::batchnorm_act_backward(m, c, to_bf16_vector(z).data(), to_bf16_vector(g).data(),
                                      mean.data(), var.data(), gamma.data(), beta.data(), 1e-5f,
                                      Activation::relu6, true, gz.data(), grads.data(),
                                      grads.data() + c);
  for (size_t i = 0; i < yf.size(); ++i) REQUIRE(yh[i].bits == to_bf16(yf[i]).bits);
  for (size_t i = 0; i < gz.size(); ++i) REQUIRE(gz[i].bits == to_bf16(gz_ref[i]).bits);
  REQUIRE(grads == g_ref);
  // Channel 1's outputs just below 6 round to 6.0 in bf16 but keep their gradient.
  int rounded_to_six_but_passing = 0;
  for (int64_t r = 0; r < m; ++r) {
    const size_t i = size_t(r * c + 1);
    if (to_float(yh[i]) == 6.0f && yf[i] < 6.0f && gz_ref[i] != 0.0f) ++rounded_to_six_but_passing;
  }
  REQUIRE(rounded_to_six_but_passing > 0);
}

TEST_CASE("bf16 GEMMs sum bf16 products in float for every transpose, accumulating or not",
          "[bf16]") {
  if (!osprey::cpu::native_bf16_gemm()) {
    WARN("no bf16 GEMMs on this CPU (or oneDNN held below AVX512-BF16): nothing to check");
    return;
  }
  const int m = 7, n = 9, k = 33;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool accumulate : {false, true}) {
        const int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
        const auto a = bf16_values(size_t(ta ? k : m) * lda, 11),
                   b = bf16_values(size_t(tb ? n : k) * ldb, 12);
        std::vector<float> c = random_floats(size_t(m) * ldc, 13);
        std::vector<double> want(size_t(m) * n);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            double sum = accumulate ? c[size_t(i) * ldc + j] : 0.0;
            for (int p = 0; p < k; ++p)
              sum += double(ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p]) *
                     double(tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j]);
            want[size_t(i) * n + j] = sum;
          }
        osprey::cpu::gemm_bf16(ta, tb, m, n, k, to_bf16_vector(a).data(), lda,
                               to_bf16_vector(b).data(), ldb, accumulate, c.data(), ldc);
        std::vector<float> got(size_t(m) * n);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) got[size_t(i) * n + j] = c[size_t(i) * ldc + j];
        // Exact bf16 products summed in float: float rounding of a 33-term sum.
        const std::string name = "gemm_bf16 ta=" + std::to_string(ta) +
                                 " tb=" + std::to_string(tb) +
                                 " accumulate=" + std::to_string(accumulate);
        require_close(got, want, 1e-5, name);
        if (accumulate) continue;
        // bf16 out: the same float sums, rounded once (to within half a bf16 ulp, 2^-9).
        std::vector<bf16> c16(size_t(m) * ldc, bf16{0x7fc0});
        osprey::cpu::gemm_bf16(ta, tb, m, n, k, to_bf16_vector(a).data(), lda,
                               to_bf16_vector(b).data(), ldb, c16.data(), ldc);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) got[size_t(i) * n + j] = to_float(c16[size_t(i) * ldc + j]);
        require_close(got, want, 1.0 / 256, name + " bf16 out");
      }
}

TEST_CASE("bf16 1x1 convolutions match the float kernel on the same bf16 values", "[bf16]") {
  INFO("native bf16 GEMMs on this CPU: " << osprey::cpu::native_bf16_gemm());
  osprey::Conv2dShape s{2, 5, 6, 24, 40, 1, 1, 1, 0};
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.h * s.w * s.k;
  const auto x = bf16_values(nx, 21), dy = bf16_values(ny, 22);
  const auto w = random_floats(size_t(s.k) * s.c, 23), bias = random_floats(size_t(s.k), 24);
  std::vector<float> w16(w.size());
  for (size_t i = 0; i < w.size(); ++i) w16[i] = to_float(to_bf16(w[i]));
  std::vector<float> y_ref(ny), dx_ref(nx), dw_ref(w.size(), 0.25f), db_ref(s.k, 0.5f);
  osprey::cpu::conv2d_forward(s, x.data(), w16.data(), bias.data(), y_ref.data());
  osprey::cpu::conv2d_backward(s, x.data(), w16.data(), dy.data(), dx_ref.data(), dw_ref.data(),
                               db_ref.data());
  std::vector<bf16> y(ny), dx(nx);
  std::vector<float> dw(w.size(), 0.25f), db(s.k, 0.5f);
  osprey::cpu::conv2d_forward(s, to_bf16_vector(x).data(), w.data(), bias.data(), y.data());
  osprey::cpu::conv2d_backward(s, to_bf16_vector(x).data(), w.data(), to_bf16_vector(dy).data(),
                               dx.data(), dw.data(), db.data());
  require_close(widen(y), to_double(y_ref), 1.0 / 256, "bf16 1x1 conv forward");
  // Without a bias (MobileNetV2's 1x1 convolutions) the GEMM writes bf16 itself.
  osprey::cpu::conv2d_forward(s, x.data(), w16.data(), nullptr, y_ref.data());
  osprey::cpu::conv2d_forward(s, to_bf16_vector(x).data(), w.data(), nullptr, y.data());
  require_close(widen(y), to_double(y_ref), 1.0 / 256, "bf16 1x1 conv forward without bias");
  require_close(widen(dx), to_double(dx_ref), 1.0 / 256, "bf16 1x1 conv input gradient");
  // Gradients of the weights and bias stay in float (accumulated onto what was there).
  require_close(dw, to_double(dw_ref), 1e-5, "bf16 1x1 conv weight gradient");
  require_close(db, to_double(db_ref), 1e-6, "bf16 1x1 conv bias gradient");
}
