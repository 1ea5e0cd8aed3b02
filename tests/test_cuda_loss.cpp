// CUDA softmax cross-entropy against the CPU op, with and without label smoothing.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/loss.h"
#include "kernels/cuda/loss.h"
#include "tests/cuda_test_support.h"

namespace {

using osprey::tests::DeviceBuffer;
using osprey::tests::random_floats;
using osprey::tests::rel_l2;

std::vector<int64_t> random_labels(int n, int classes, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> dist(0, classes - 1);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& y : v) y = dist(gen);
  return v;
}

}  // namespace

TEST_CASE("cuda softmax cross-entropy matches the CPU op") {
  const int shapes[][2] = {{1, 1}, {1, 10}, {7, 3}, {64, 10}, {33, 1000}, {5, 4097}};
  uint32_t seed = 500;
  for (const auto& sh : shapes)
    for (float smoothing : {0.0f, 0.1f}) {
      const int n = sh[0], classes = sh[1];
      INFO("n=" << n << " classes=" << classes << " smoothing=" << smoothing);
      // Logits spread over [-20, 20]: exp would overflow float without the max shift.
      const auto logits = random_floats(size_t(n) * classes, seed++, -20.0f, 20.0f);
      const auto labels = random_labels(n, classes, seed++);
      std::vector<float> probs_cpu(logits.size()), dlogits_cpu(logits.size());
      const double loss_cpu = osprey::cpu::softmax_cross_entropy_forward(
          n, classes, logits.data(), labels.data(), smoothing, probs_cpu.data());
      const float dloss = 1.7f;
      osprey::cpu::softmax_cross_entropy_backward(n, classes, probs_cpu.data(), labels.data(),
                                                  smoothing, dloss, dlogits_cpu.data());

      DeviceBuffer<float> glogits(logits), gprobs(logits.size()), gloss(1), gdlogits(logits.size());
      DeviceBuffer<int64_t> glabels(labels);
      DeviceBuffer<float> gdloss(std::vector<float>{dloss});
      gprobs.poison();
      gloss.poison();
      gdlogits.poison();
      osprey::cuda::softmax_cross_entropy_forward(n, classes, glogits.ptr, glabels.ptr, smoothing,
                                                  gprobs.ptr, gloss.ptr, nullptr);
      const float loss_gpu = gloss.download()[0];
      REQUIRE(std::isfinite(loss_gpu));
      REQUIRE(std::fabs(loss_gpu - loss_cpu) <= 1e-5 * std::fabs(loss_cpu) + 1e-6);
      REQUIRE(rel_l2(gprobs.download(), probs_cpu) < 1e-5);

      osprey::cuda::softmax_cross_entropy_backward(n, classes, gprobs.ptr, glabels.ptr, smoothing,
                                                   gdloss.ptr, gdlogits.ptr, nullptr);
      REQUIRE(rel_l2(gdlogits.download(), dlogits_cpu) < 1e-5);

      // The reduction order is fixed: a second run gives the same bits.
      gloss.poison();
      osprey::cuda::softmax_cross_entropy_forward(n, classes, glogits.ptr, glabels.ptr, smoothing,
                                                  gprobs.ptr, gloss.ptr, nullptr);
      const float again = gloss.download()[0];
      REQUIRE(std::memcmp(&again, &loss_gpu, sizeof(float)) == 0);
    }
}

TEST_CASE("cuda softmax cross-entropy backward reads dloss from the device") {
  const int n = 9, classes = 11;
  const auto logits = random_floats(size_t(n) * classes, 77, -3.0f, 3.0f);
  const auto labels = random_labels(n, classes, 78);
  std::vector<float> probs(logits.size()), d_neg(logits.size());
  osprey::cpu::softmax_cross_entropy_forward(n, classes, logits.data(), labels.data(), 0.2f,
                                             probs.data());
  osprey::cpu::softmax_cross_entropy_backward(n, classes, probs.data(), labels.data(), 0.2f, -0.5f,
                                              d_neg.data());
  DeviceBuffer<float> gprobs(probs), gd(logits.size()), gdloss(std::vector<float>{-0.5f});
  DeviceBuffer<int64_t> glabels(labels);
  gd.poison();
  osprey::cuda::softmax_cross_entropy_backward(n, classes, gprobs.ptr, glabels.ptr, 0.2f,
                                               gdloss.ptr, gd.ptr, nullptr);
  REQUIRE(rel_l2(gd.download(), d_neg) < 1e-6);
}
