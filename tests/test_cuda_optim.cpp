// Fused CUDA SGD and Adam/AdamW steps against the CPU ops, over several steps.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "kernels/cpu/optim.h"
#include "kernels/cuda/optim.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

// Both sides follow the same float operation order, so they agree to rounding (bit for bit
// unless the host compiler contracts into FMAs).
constexpr double kTol = 1e-6;

// The update itself (p_after - p_before) is a small fraction of p, so it gets its own check:
// a wrong bias correction or learning-rate scaling would hide in the rounding of p. The looser
// bound leaves room for the ulp-level differences that FMA contraction on the host can cause.
constexpr double kUpdateTol = 1e-4;

std::vector<float> minus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

struct SgdCase {
  const char* name;
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};

struct AdamCase {
  const char* name;
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
};

// Sizes: a single element, a float4 body with a tail, and a longer run. offset 1 shifts every
// buffer off 16-byte alignment so the scalar path is tested as well.
const int64_t kSizes[] = {1, 7, 4099};

}  // namespace

TEST_CASE("cuda sgd_step matches the CPU op over several steps") {
  const SgdCase cases[] = {
      {"plain", 0.1f, 0.0f, 0.0f, 0.0f, false},
      {"momentum+nesterov+wd", 0.05f, 0.9f, 0.0f, 1e-2f, true},
      {"momentum+dampening", 0.05f, 0.9f, 0.3f, 0.0f, false},
      {"momentum+dampening+wd", 0.02f, 0.8f, 0.1f, 5e-4f, false},
  };
  uint32_t seed = 700;
  for (const auto& c : cases)
    for (int64_t n : kSizes)
      for (int offset : {0, 1}) {
        INFO(c.name << " n=" << n << " offset=" << offset);
        const size_t total = size_t(n + offset);
        auto p_cpu = random_floats(total, seed++);
        std::vector<float> buf_cpu(total, 0.0f);
        DeviceBuffer<float> gp(p_cpu), gbuf(buf_cpu), gg(total);
        for (int step = 0; step < 4; ++step) {
          const auto g = random_floats(total, seed++);
          gg.upload(g);
          const bool first = step == 0;
          const auto p_cpu_before = p_cpu, p_gpu_before = gp.download();
          osprey::cpu::sgd_step(n, p_cpu.data() + offset, g.data() + offset,
                                buf_cpu.data() + offset, c.lr, c.momentum, c.dampening,
                                c.weight_decay, c.nesterov, first);
          osprey::cuda::sgd_step(n, gp.ptr + offset, gg.ptr + offset, gbuf.ptr + offset, c.lr,
                                 c.momentum, c.dampening, c.weight_decay, c.nesterov, first,
                                 nullptr);
          const auto p_gpu = gp.download();
          REQUIRE(rel_l2(p_gpu, p_cpu) < kTol);
          REQUIRE(rel_l2(minus(p_gpu, p_gpu_before), minus(p_cpu, p_cpu_before)) < kUpdateTol);
          if (c.momentum != 0.0f) REQUIRE(rel_l2(gbuf.download(), buf_cpu) < kTol);
        }
      }
}

TEST_CASE("cuda adam_step matches the CPU op (Adam, coupled wd, AdamW) over several steps") {
  const AdamCase cases[] = {
      {"adam", 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false},
      {"adam+wd", 1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, false},
      {"adamw", 2e-3f, 0.9f, 0.99f, 1e-6f, 5e-2f, true},
      // beta1 below 0.5 makes ATen's lerp take its other formula.
      {"adamw low beta1", 1e-2f, 0.3f, 0.9f, 1e-8f, 1e-1f, true},
  };
  uint32_t seed = 800;
  for (const auto& c : cases)
    for (int64_t n : kSizes)
      for (int offset : {0, 1}) {
        INFO(c.name << " n=" << n << " offset=" << offset);
        const size_t total = size_t(n + offset);
        auto p_cpu = random_floats(total, seed++);
        std::vector<float> m_cpu(total, 0.0f), v_cpu(total, 0.0f);
        DeviceBuffer<float> gp(p_cpu), gm(m_cpu), gv(v_cpu), gg(total);
        for (int64_t step = 1; step <= 5; ++step) {
          const auto g = random_floats(total, seed++);
          gg.upload(g);
          const auto p_cpu_before = p_cpu, p_gpu_before = gp.download();
          osprey::cpu::adam_step(n, p_cpu.data() + offset, g.data() + offset, m_cpu.data() + offset,
                                 v_cpu.data() + offset, c.lr, c.beta1, c.beta2, c.eps,
                                 c.weight_decay, c.decoupled, step);
          osprey::cuda::adam_step(n, gp.ptr + offset, gg.ptr + offset, gm.ptr + offset,
                                  gv.ptr + offset, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
                                  c.decoupled, step, nullptr);
          const auto p_gpu = gp.download();
          REQUIRE(rel_l2(p_gpu, p_cpu) < kTol);
          REQUIRE(rel_l2(minus(p_gpu, p_gpu_before), minus(p_cpu, p_cpu_before)) < kUpdateTol);
          REQUIRE(rel_l2(gm.download(), m_cpu) < kTol);
          REQUIRE(rel_l2(gv.download(), v_cpu) < kTol);
        }
      }
}
