#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/threads.h"
#include "tools/bench.h"

namespace osprey::tools {
namespace {

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The best GFLOP/s of a square sgemm of side n over `repeats` runs (after one warm-up): what
// this machine's GEMM reaches when nothing else limits it.
double measured_peak_gflops(int n, int repeats) {
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  auto run = [&] {
    cpu::sgemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  run();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) best = std::min(best, seconds_of(run));
  return 2.0 * n * n * double(n) / best / 1e9;
}

}  // namespace

nlohmann::json bench_gemm(const BenchTrainOptions& o) {
  OSPREY_CHECK(o.device == "cpu", "bench gemm: the roofline is of the CPU (device cpu)");
  OSPREY_CHECK(o.batch >= 1 && o.steps >= 1, "bench gemm: batch and steps must be >= 1");
  const int threads = cpu::set_num_threads(o.threads);
  constexpr int kPeakSide = 2048;
  const double peak = measured_peak_gflops(kPeakSide, 5);

  auto model = bench_model(o);
  OptimizerOptions oo;
  oo.kind = o.optimizer;
  auto optimizer = make_optimizer(model->params(), oo);
  Rng rng(42);
  const Tensor x = random_batch(o, rng);
  std::vector<int64_t> labels(size_t(o.batch));
  for (auto& l : labels) l = int64_t(rng.next_u64() % uint64_t(o.classes));
  const Tensor y = Tensor::from_labels(labels);
  auto step = [&] {
    optimizer->zero_grad();
    ops::softmax_cross_entropy(model->forward(x), y).backward();
    optimizer->step();
  };
  for (int i = 0; i < std::max(o.warmup, 1); ++i) step();
  cpu::record_gemms(true);
  const double step_s = seconds_of([&] {
                          for (int i = 0; i < o.steps; ++i) step();
                        }) /
                        o.steps;
  cpu::record_gemms(false);

  nlohmann::json lines = nlohmann::json::array();
  lines.push_back({{"bench", "gemm_peak"},
                   {"shape", {kPeakSide, kPeakSide, kPeakSide}},
                   {"threads", threads},
                   {"gflops", peak}});
  double gemm_s = 0.0, gemm_flops = 0.0;
  for (const cpu::GemmRecord& r : cpu::recorded_gemms()) {
    const double flops = 2.0 * r.shape.m * r.shape.n * double(r.shape.k) * double(r.calls);
    const double gflops = flops / r.seconds / 1e9;
    gemm_s += r.seconds, gemm_flops += flops;
    lines.push_back(
        {{"bench", "gemm_shape"},
         {"model", o.model},
         {"m", r.shape.m},
         {"n", r.shape.n},
         {"k", r.shape.k},
         {"trans", std::string(r.shape.trans_a ? "T" : "N") + (r.shape.trans_b ? "T" : "N")},
         {"calls_per_step", double(r.calls) / o.steps},
         {"ms_per_step", 1e3 * r.seconds / o.steps},
         {"gflops", gflops},
         {"of_peak", gflops / peak}});
  }
  lines.push_back({{"bench", "gemm_step"},
                   {"model", o.model},
                   {"batch", o.batch},
                   {"size", o.size},
                   {"threads", threads},
                   {"ms_per_step", 1e3 * step_s},
                   {"images_per_s", o.batch / step_s},
                   {"gemm_ms_per_step", 1e3 * gemm_s / o.steps},
                   {"gemm_share", gemm_s / o.steps / step_s},
                   {"gemm_gflops", gemm_flops / gemm_s / 1e9},
                   {"gemm_of_peak", gemm_flops / gemm_s / 1e9 / peak},
                   {"step_gemm_gflops", gemm_flops / o.steps / step_s / 1e9}});
  return lines;
}

}  // namespace osprey::tools
