// GPU augmentation against the CPU pipeline: the same dataset samples, seed and epoch through
// data::GpuAugmenter and data::augment_batch. Both make the same random choices (drawn on the
// host) and the kernels spell out the CPU's float operations, so images agree to float rounding
// (the contrast mean's double sum is the only reduction whose order differs).
#include "data/gpu_augment.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "data/augment.h"
#include "engine/rng.h"

namespace osprey::tests {
namespace {

data::Dataset random_dataset(int n, int h, int w, int c, uint64_t seed) {
  data::Dataset ds;
  ds.name = "random";
  ds.n = n, ds.h = h, ds.w = w, ds.c = c, ds.num_classes = 10;
  Rng rng(seed);
  for (int64_t i = 0; i < int64_t(n) * h * w * c; ++i)
    ds.pixels.push_back(uint8_t(rng.next_u64() % 256));
  for (int i = 0; i < n; ++i) ds.labels.push_back(i % 10);
  return ds;
}

void check_pipeline(const nlohmann::json& json, const data::Dataset& ds, int channels) {
  INFO(json.dump());
  const data::AugmentPipeline pipeline = data::AugmentPipeline::from_json(json);
  std::vector<int64_t> idx(size_t(ds.n));
  std::iota(idx.rbegin(), idx.rend(), 0);  // any order: draws follow the dataset index
  const data::ImageShape o = pipeline.output_shape({ds.h, ds.w, channels == 0 ? ds.c : channels});
  for (int epoch : {0, 3}) {
    std::vector<float> want(size_t(ds.n) * o.h * o.w * o.c);
    data::augment_batch(pipeline, ds, idx.data(), ds.n, 42, epoch, channels, want.data());
    data::GpuAugmenter gpu(pipeline, {ds.h, ds.w, ds.c}, channels);
    REQUIRE(gpu.output_shape().h == o.h);
    REQUIRE(gpu.output_shape().c == o.c);
    const std::vector<float> got = gpu.run(ds, idx.data(), ds.n, 42, epoch).to_vector();
    REQUIRE(got.size() == want.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i)
      worst =
          std::isfinite(got[i]) ? std::max(worst, double(std::abs(got[i] - want[i]))) : INFINITY;
    INFO("epoch " << epoch << " worst abs difference " << worst);
    REQUIRE(worst < 1e-5);
  }
}

}  // namespace

TEST_CASE("gpu augmentation gives the cpu pipeline's images") {
  const data::Dataset rgb = random_dataset(6, 32, 32, 3, 1), gray = random_dataset(5, 28, 28, 1, 2);
  // The seed project's 224 pipeline (resize, random resized crop, flip, colour jitter,
  // rotation, normalize) and the CIFAR one (pad + crop, flip, normalize).
  check_pipeline(data::seed_pipeline_json(), rgb, 0);
  check_pipeline(data::cifar_pipeline_json(), rgb, 0);
  // Grayscale replicated to RGB, nearest rotation, centre crop, shorter-side resize, jitter in
  // one channel, one mean for all channels.
  check_pipeline(nlohmann::json::parse(R"([
      {"type": "resize", "size": 40},
      {"type": "rotation", "degrees": 30, "fill": 0.5, "interpolation": "nearest"},
      {"type": "center_crop", "size": [36, 30]},
      {"type": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.2},
      {"type": "normalize", "mean": [0.5], "std": [0.25]}])"),
                 gray, 3);
  check_pipeline(nlohmann::json::parse(R"([
      {"type": "pad_crop", "pad": 3, "size": [28, 28], "fill": 0.2},
      {"type": "color_jitter", "brightness": [0.5, 1.5], "contrast": 0.5},
      {"type": "hflip", "p": 0.5}])"),
                 gray, 0);
}

}  // namespace osprey::tests
