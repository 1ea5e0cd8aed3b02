// `osprey bench conv`: our dense-convolution kernels against oneDNN's convolution primitives on
// every dense-convolution shape of the models' training steps.
#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "kernels/cpu/conv_detail.h"
#include "kernels/cpu/conv_onednn.h"
#include "kernels/cpu/threads.h"
#include "kernels/error.h"
#include "tools/bench.h"

namespace osprey::tools {
namespace {

struct ConvCase {
  const char* model;
  int calls;      // per training step
  bool bias, dx;  // what the training step computes: the first layer needs no dx
  Conv2dShape s;
};

Conv2dShape shape(int n, int hw, int c, int k, int kernel, int stride) {
  Conv2dShape s;
  s.n = n, s.h = s.w = hw, s.c = c, s.k = k, s.kh = s.kw = kernel;
  s.stride = stride, s.pad = kernel / 2;
  return s;
}

// Recorded from conv2d_forward / conv2d_backward during one step of `osprey bench train` of
// each model: simple_cnn 28x28x1 batch 64, mobilenet_v2_cifar 32x32x3 batch 64, mobilenet_v2
// 224x224x3 batch 16 (1000 classes). BatchNorm follows MobileNetV2's convolutions: no bias.
std::vector<ConvCase> training_convs() {
  std::vector<ConvCase> all = {
      {"simple_cnn", 1, true, false, shape(64, 28, 1, 32, 3, 1)},
      {"simple_cnn", 1, true, true, shape(64, 14, 32, 64, 3, 1)},
      {"mobilenet_v2_cifar", 1, false, false, shape(64, 32, 3, 32, 3, 1)},
      {"mobilenet_v2", 1, false, false, shape(16, 224, 3, 32, 3, 2)},
  };
  // The inverted residual blocks' 1x1 expansions and projections and the head: calls per step,
  // the side at the CIFAR stem and at 224, C and K.
  struct Pointwise {
    int calls, cifar_side, side_224, c, k;
  };
  const Pointwise pointwise[] = {
      {1, 32, 112, 32, 16}, {1, 32, 112, 16, 96}, {1, 32, 56, 96, 24},  {2, 32, 56, 24, 144},
      {1, 32, 56, 144, 24}, {1, 16, 28, 144, 32}, {3, 16, 28, 32, 192}, {2, 16, 28, 192, 32},
      {1, 8, 14, 192, 64},  {4, 8, 14, 64, 384},  {3, 8, 14, 384, 64},  {1, 8, 14, 384, 96},
      {3, 8, 14, 96, 576},  {2, 8, 14, 576, 96},  {1, 4, 7, 576, 160},  {3, 4, 7, 160, 960},
      {2, 4, 7, 960, 160},  {1, 4, 7, 960, 320},  {1, 4, 7, 320, 1280}};
  for (const Pointwise& p : pointwise)
    all.push_back(
        {"mobilenet_v2_cifar", p.calls, false, true, shape(64, p.cifar_side, p.c, p.k, 1, 1)});
  for (const Pointwise& p : pointwise)
    all.push_back({"mobilenet_v2", p.calls, false, true, shape(16, p.side_224, p.c, p.k, 1, 1)});
  return all;
}

double ms_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The best run: on cores shared with other processes, every slower one measures them too.
double best(const std::vector<double>& v) {
  return *std::min_element(v.begin(), v.end());
}

// Forward, input gradient and weight (+ bias) gradient of one implementation, timed apart.
struct Passes {
  std::function<void()> forward, data, weights;
};

struct Buffers {
  std::vector<float> x, w, b, y, dy, dx, dw, db;
  explicit Buffers(const Conv2dShape& s) {
    Rng rng(7);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(size_t(n));
      for (float& f : v) f = float(rng.normal());
    };
    fill(x, s.input_numel()), fill(w, int64_t(s.k) * s.kh * s.kw * s.c), fill(b, s.k);
    fill(dy, s.output_numel());
    y.resize(dy.size()), dx.resize(x.size()), dw.resize(w.size()), db.resize(b.size());
  }
};

Passes ours(const ConvCase& cc, Buffers& m) {
  const Conv2dShape s = cc.s;
  return {[&m, s, cc] {
            cpu::conv_detail::own_forward(s, m.x.data(), m.w.data(), cc.bias ? m.b.data() : nullptr,
                                          m.y.data());
          },
          [&m, s] {
            cpu::conv_detail::own_backward(s, m.x.data(), m.w.data(), m.dy.data(), m.dx.data(),
                                           nullptr, nullptr);
          },
          [&m, s, cc] {
            cpu::conv_detail::own_backward(s, m.x.data(), m.w.data(), m.dy.data(), nullptr,
                                           m.dw.data(), cc.bias ? m.db.data() : nullptr);
          }};
}

// oneDNN's primitives for all three passes, db by our column sum (as conv2d_backward does:
// oneDNN's bias gradient is slow for stems).
Passes onednn(const ConvCase& cc, Buffers& m) {
  const Conv2dShape s = cc.s;
  return {
      [&m, s, cc] {
        cpu::onednn_conv2d_forward(s, m.x.data(), m.w.data(), cc.bias ? m.b.data() : nullptr,
                                   m.y.data());
      },
      [&m, s] {
        cpu::onednn_conv2d_backward(s, m.x.data(), m.w.data(), m.dy.data(), m.dx.data(), nullptr);
      },
      [&m, s, cc] {
        cpu::onednn_conv2d_backward(s, m.x.data(), m.w.data(), m.dy.data(), nullptr, m.dw.data());
        if (cc.bias) cpu::conv_detail::bias_gradient(s, m.dy.data(), m.db.data());
      }};
}

// What training runs: conv2d_forward / conv2d_backward, each pass on the side
// onednn_conv_faster picks.
Passes chosen(const ConvCase& cc, Buffers& m) {
  const Conv2dShape s = cc.s;
  return {
      [&m, s, cc] {
        cpu::conv2d_forward(s, m.x.data(), m.w.data(), cc.bias ? m.b.data() : nullptr, m.y.data());
      },
      [&m, s] {
        cpu::conv2d_backward(s, m.x.data(), m.w.data(), m.dy.data(), m.dx.data(), nullptr, nullptr);
      },
      [&m, s, cc] {
        cpu::conv2d_backward(s, m.x.data(), m.w.data(), m.dy.data(), nullptr, m.dw.data(),
                             cc.bias ? m.db.data() : nullptr);
      }};
}

const char* our_path(const Conv2dShape& s) {
  const cpu::conv_detail::Geometry g = cpu::conv_detail::geometry(s);
  if (g.pointwise) return "1x1 gemm";
  if (!g.direct) return "im2col gemm";
  return g.direct_dx ? "direct, direct dx" : "direct, im2col dx";
}

// The passes of one convolution on each side, alternating, after untimed warm-up rounds.
nlohmann::json bench_case(const ConvCase& cc, int repeats, int warmup) {
  Buffers m(cc.s);
  constexpr int kSides = 3;
  const char* names[kSides] = {"ours", "onednn", "chosen"};
  const Passes sides[kSides] = {ours(cc, m), onednn(cc, m), chosen(cc, m)};
  std::vector<double> t[kSides][3];
  for (int r = -std::max(warmup, 1); r < repeats; ++r)
    for (int i = 0; i < kSides; ++i) {
      const double f = ms_of(sides[i].forward), d = cc.dx ? ms_of(sides[i].data) : 0.0;
      const double w = ms_of(sides[i].weights);
      if (r < 0) continue;
      t[i][0].push_back(f), t[i][1].push_back(d), t[i][2].push_back(w);
    }
  const Conv2dShape& s = cc.s;
  nlohmann::json line = {{"bench", "conv_shape"},
                         {"model", cc.model},
                         {"calls_per_step", cc.calls},
                         {"n", s.n},
                         {"h", s.h},
                         {"w", s.w},
                         {"c", s.c},
                         {"k", s.k},
                         {"kernel", s.kh},
                         {"stride", s.stride},
                         {"pad", s.pad},
                         {"bias", cc.bias},
                         {"dx", cc.dx}};
  double total[kSides];
  for (int i = 0; i < kSides; ++i) {
    const double f = best(t[i][0]), d = best(t[i][1]), w = best(t[i][2]);
    total[i] = f + d + w;
    const std::string p = names[i];
    line[p + "_fwd_ms"] = f, line[p + "_dx_ms"] = d, line[p + "_dw_ms"] = w;
    line[p + "_ms"] = total[i];
  }
  line["ours_over_onednn"] = total[0] / total[1];
  line["ours_over_chosen"] = total[0] / total[2];
  std::string picked;
  for (cpu::ConvPass p : {cpu::ConvPass::forward, cpu::ConvPass::data, cpu::ConvPass::weights})
    picked += std::string(picked.empty() ? "" : " / ") +
              (cpu::onednn_conv_faster(s, p) ? "onednn" : "ours");
  line["chosen"] = picked;
  line["our_path"] = our_path(s);
  line["onednn_impl"] = cpu::onednn_conv2d_impl(s);
  return line;
}

}  // namespace

nlohmann::json bench_conv(const BenchTrainOptions& o) {
  OSPREY_CHECK(o.steps >= 1, "bench conv: steps must be >= 1");
  const int threads = cpu::set_num_threads(o.threads);
  nlohmann::json lines = nlohmann::json::array();
  std::map<std::string, std::array<double, 3>> steps;  // per model: ours, oneDNN, chosen
  const char* sides[3] = {"ours_ms", "onednn_ms", "chosen_ms"};
  for (const ConvCase& cc : training_convs()) {
    if (o.model != "all" && o.model != cc.model) continue;
    nlohmann::json line = bench_case(cc, o.steps, o.warmup);
    line["threads"] = threads;
    auto& step = steps.try_emplace(cc.model, std::array<double, 3>{}).first->second;
    for (int i = 0; i < 3; ++i) step[i] += cc.calls * line[sides[i]].get<double>();
    lines.push_back(std::move(line));
  }
  OSPREY_CHECK(!lines.empty(), "bench conv: no dense convolutions for model '", o.model,
               "' (all, simple_cnn, mobilenet_v2_cifar, mobilenet_v2)");
  for (const auto& [model, step] : steps)
    lines.push_back({{"bench", "conv_step"},
                     {"model", model},
                     {"threads", threads},
                     {"ours_ms_per_step", step[0]},
                     {"onednn_ms_per_step", step[1]},
                     {"chosen_ms_per_step", step[2]},
                     {"ours_over_onednn", step[0] / step[1]},
                     {"ours_over_chosen", step[0] / step[2]}});
  return lines;
}

}  // namespace osprey::tools
