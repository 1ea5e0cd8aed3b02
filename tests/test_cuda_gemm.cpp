// cuBLASLt sgemm, the linear layer and column sums against the CPU ops (OpenBLAS).
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

// The m x n block of a row-major matrix with leading dimension ld.
std::vector<float> block(const std::vector<float>& c, int m, int n, int ld) {
  std::vector<float> out(size_t(m) * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) out[size_t(i) * n + j] = c[size_t(i) * ld + j];
  return out;
}

// Restores fp32 GEMMs even when an assertion throws out of the TF32 test.
struct Tf32Scope {
  Tf32Scope() { osprey::cuda::set_tf32(true); }
  ~Tf32Scope() { osprey::cuda::set_tf32(false); }
};

struct GemmCase {
  bool ta, tb;
  int m, n, k;
  float beta;
};

// Runs one case on both sides; returns the relative error over the m x n result and checks
// that the padding columns between n and ldc are left alone.
double run_case(const GemmCase& g, uint32_t seed) {
  const int a_rows = g.ta ? g.k : g.m, a_cols = g.ta ? g.m : g.k;
  const int b_rows = g.tb ? g.n : g.k, b_cols = g.tb ? g.k : g.n;
  // Leading dimensions wider than the matrices, and odd, so that ld handling is exercised.
  const int lda = a_cols + 2, ldb = b_cols + 1, ldc = g.n + 3;
  const auto a = random_floats(size_t(a_rows) * lda, seed);
  const auto b = random_floats(size_t(b_rows) * ldb, seed + 1);
  auto c_cpu = random_floats(size_t(g.m) * ldc, seed + 2);
  DeviceBuffer<float> da(a), db(b), dc(c_cpu);
  if (g.beta == 0.0f) dc.poison();  // beta 0 must not read C, NaNs included
  const float alpha = 0.75f;
  osprey::cpu::sgemm(g.ta, g.tb, g.m, g.n, g.k, alpha, a.data(), lda, b.data(), ldb, g.beta,
                     c_cpu.data(), ldc);
  osprey::cuda::sgemm(g.ta, g.tb, g.m, g.n, g.k, alpha, da.ptr, lda, db.ptr, ldb, g.beta, dc.ptr,
                      ldc, nullptr);
  const auto c_gpu = dc.download();
  if (g.beta != 0.0f) {
    for (int i = 0; i < g.m; ++i)
      for (int j = g.n; j < ldc; ++j)
        REQUIRE(c_gpu[size_t(i) * ldc + j] == c_cpu[size_t(i) * ldc + j]);
  }
  return rel_l2(block(c_gpu, g.m, g.n, ldc), block(c_cpu, g.m, g.n, ldc));
}

}  // namespace

TEST_CASE("cuda sgemm matches the CPU for every transpose combination and odd sizes") {
  const int sizes[][3] = {{1, 1, 1},   {7, 13, 5},  {33, 17, 65}, {64, 1, 31},
                          {1, 129, 3}, {5, 3, 257}, {130, 67, 1}};
  uint32_t seed = 100;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& s : sizes)
        for (float beta : {0.0f, 1.0f}) {
          const GemmCase g{ta == 1, tb == 1, s[0], s[1], s[2], beta};
          INFO("ta=" << ta << " tb=" << tb << " m=" << s[0] << " n=" << s[1] << " k=" << s[2]
                     << " beta=" << beta);
          REQUIRE(run_case(g, seed += 3) < 1e-5);
        }
}

TEST_CASE("cuda sgemm reuses cached plans across calls with the same shape") {
  // The second and third calls take the cached plan; results must not change.
  const GemmCase g{false, true, 19, 23, 29, 1.0f};
  for (int rep = 0; rep < 3; ++rep) REQUIRE(run_case(g, 7) < 1e-5);
}

TEST_CASE("cuda sgemm with k == 0 scales C by beta and clears NaNs when beta is 0") {
  const int m = 5, n = 7, ldc = 9;
  auto c = random_floats(size_t(m) * ldc, 3);
  DeviceBuffer<float> dc(c);
  osprey::cuda::sgemm(false, false, m, n, 0, 1.0f, nullptr, 1, nullptr, n, 0.5f, dc.ptr, ldc,
                      nullptr);
  auto half = dc.download();
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < ldc; ++j) {
      const size_t at = size_t(i) * ldc + j;
      REQUIRE(half[at] == (j < n ? 0.5f * c[at] : c[at]));
    }
  dc.poison();
  osprey::cuda::sgemm(true, true, m, n, 0, 1.0f, nullptr, m, nullptr, 1, 0.0f, dc.ptr, ldc,
                      nullptr);
  const auto zero = block(dc.download(), m, n, ldc);
  for (float v : zero) REQUIRE(v == 0.0f);
}

TEST_CASE("cuda sgemm in TF32 mode stays close to fp32") {
  // TF32 keeps 10 mantissa bits of each input (relative rounding ~2^-11 = 4.9e-4 per operand);
  // with accumulation in fp32 over random signs the relative L2 error of the product lands
  // around 1e-3 or below. 5e-3 bounds that while still catching a wrong layout or transpose.
  Tf32Scope tf32;
  const int sizes[][3] = {{64, 64, 64}, {33, 17, 65}, {128, 96, 512}};
  uint32_t seed = 900;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const auto& s : sizes) {
        const GemmCase g{ta == 1, tb == 1, s[0], s[1], s[2], 0.0f};
        REQUIRE(run_case(g, seed += 3) < 5e-3);
      }
}

TEST_CASE("cuda linear forward and backward match the CPU op") {
  const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {33, 65, 17}, {128, 31, 10}};
  uint32_t seed = 200;
  for (const auto& sh : shapes)
    for (bool with_bias : {false, true}) {
      const int n = sh[0], in = sh[1], out = sh[2];
      INFO("n=" << n << " in=" << in << " out=" << out << " bias=" << with_bias);
      const auto x = random_floats(size_t(n) * in, seed++);
      const auto w = random_floats(size_t(out) * in, seed++);
      const auto bias = random_floats(size_t(out), seed++);
      const auto dy = random_floats(size_t(n) * out, seed++);
      // Accumulated gradients start from the same random values on both sides.
      auto dw_cpu = random_floats(size_t(out) * in, seed++);
      auto db_cpu = random_floats(size_t(out), seed++);
      std::vector<float> y_cpu(size_t(n) * out), dx_cpu(size_t(n) * in);
      DeviceBuffer<float> gx(x), gw(w), gbias(bias), gdy(dy), gy(y_cpu.size()), gdx(dx_cpu.size()),
          gdw(dw_cpu), gdb(db_cpu);
      gy.poison();
      gdx.poison();
      const float* bias_ptr = with_bias ? bias.data() : nullptr;
      osprey::cpu::linear_forward(n, in, out, x.data(), w.data(), bias_ptr, y_cpu.data());
      osprey::cuda::linear_forward(n, in, out, gx.ptr, gw.ptr, with_bias ? gbias.ptr : nullptr,
                                   gy.ptr, nullptr);
      REQUIRE(rel_l2(gy.download(), y_cpu) < 1e-5);
      osprey::cpu::linear_backward(n, in, out, x.data(), w.data(), dy.data(), dx_cpu.data(),
                                   dw_cpu.data(), db_cpu.data());
      osprey::cuda::linear_backward(n, in, out, gx.ptr, gw.ptr, gdy.ptr, gdx.ptr, gdw.ptr, gdb.ptr,
                                    nullptr);
      REQUIRE(rel_l2(gdx.download(), dx_cpu) < 1e-5);
      REQUIRE(rel_l2(gdw.download(), dw_cpu) < 1e-5);
      REQUIRE(rel_l2(gdb.download(), db_cpu) < 1e-5);
    }
}

TEST_CASE("cuda add_column_sums accumulates in double and is deterministic") {
  const std::pair<int64_t, int> shapes[] = {{1, 1}, {1000, 3}, {100003, 40}, {7, 1025}};
  uint32_t seed = 300;
  for (const auto& [rows, cols] : shapes) {
    INFO("rows=" << rows << " cols=" << cols);
    const auto a = random_floats(size_t(rows) * cols, seed++);
    const auto init = random_floats(size_t(cols), seed++);
    // Reference in double from the same starting values.
    std::vector<double> ref(init.begin(), init.end());
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) ref[c] += a[size_t(r) * cols + c];
    std::vector<float> expect(ref.begin(), ref.end());
    DeviceBuffer<float> da(a), out(init);
    osprey::cuda::add_column_sums(rows, cols, da.ptr, out.ptr, nullptr);
    const auto first = out.download();
    REQUIRE(rel_l2(first, expect) < 1e-6);
    out.upload(init);
    osprey::cuda::add_column_sums(rows, cols, da.ptr, out.ptr, nullptr);
    const auto second = out.download();
    REQUIRE(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
  }
}
