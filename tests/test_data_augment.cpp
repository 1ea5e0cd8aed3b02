// AugmentPipeline: JSON parsing and its errors, pipeline-level results, determinism across
// threads, batch sizes and order, and the BatchLoader integration.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "kernels/error.h"
#include "tests/test_support.h"

using nlohmann::json;
using osprey::Error;
using namespace osprey::data;
using Catch::Matchers::Contains;

namespace {

AugmentPipeline parse(const char* text) {
  return AugmentPipeline::from_json(json::parse(text));
}

std::vector<float> run_batch(const AugmentPipeline& p, const Dataset& ds,
                             const std::vector<int64_t>& idx, int epoch, int threads,
                             int channels = 0) {
  const ImageShape o = p.output_shape({ds.h, ds.w, channels ? channels : ds.c});
  std::vector<float> out(idx.size() * size_t(o.h) * o.w * o.c);
  augment_batch(p, ds, idx.data(), int(idx.size()), 7, epoch, channels, out.data(), threads);
  return out;
}

}  // namespace

TEST_CASE("JSON errors name the transform index and key", "[data][augment]") {
  auto err = [](const char* text, const char* want) {
    INFO(text);
    CHECK_THROWS_WITH(parse(text), Contains(want));
  };
  err(R"({"type": "hflip"})", "expected a JSON array");
  err(R"([{"type": "hflip"}, {"type": "blur"}])", "transforms[1]: unknown type 'blur'");
  err(R"([{"type": "hflip", "q": 1}])", "transforms[0] (hflip): unknown key 'q' (valid: p)");
  err(R"([{"type": "hflip", "p": "half"}])", "transforms[0] (hflip): key 'p' must be a number");
  err(R"([{"type": "hflip", "p": 1.5}])", "key 'p' must be in [0, 1]");
  err(R"([{"p": 1}])", "transforms[0]: needs a string \"type\"");
  err(R"([3])", "transforms[0]: must be an object");
  err(R"([{"type": "resize"}])", "(resize): key 'size' is required");
  err(R"([{"type": "resize", "size": [2, 0]}])", "key 'size' must be in [1,");
  err(R"([{"type": "resize", "size": 2.5}])", "key 'size' must be an integer or [height, width]");
  err(R"([{"type": "random_resized_crop", "size": 8, "scale": [0.9, 0.1]}])",
      "key 'scale' must satisfy");
  err(R"([{"type": "color_jitter", "hue": 0.7}])", "(color_jitter): key 'hue' must be in [0, 0.5]");
  err(R"([{"type": "color_jitter", "brightness": -1}])", "key 'brightness' must be in [0,");
  err(R"([{"type": "rotation", "degrees": 10, "interpolation": "cubic"}])",
      "key 'interpolation' must be \"bilinear\" or \"nearest\"");
  err(R"([{"type": "pad_crop", "pad": -1, "size": 4}])", "(pad_crop): key 'pad' must be in [0,");
  err(R"([{"type": "normalize", "mean": [0.5], "std": [0]}])",
      "key 'std' values must be finite "
      "and non-zero");
  err(R"([{"type": "normalize", "mean": [0.5, 0.5], "std": [1]}])",
      "has 2 mean value(s) but 1 std value(s)");
  err(R"([{"type": "normalize", "mean": 0.5, "std": 0.5}, {"type": "hflip"}])",
      "transforms[0] (normalize): normalize must be the last transform");
}

TEST_CASE("output shapes and shape errors", "[data][augment]") {
  const AugmentPipeline p = AugmentPipeline::from_json(seed_pipeline_json());
  ImageShape o = p.output_shape({32, 32, 3});
  CHECK((o.h == 224 && o.w == 224 && o.c == 3));
  o = parse(R"([{"type": "resize", "size": 16}])").output_shape({32, 64, 1});  // shorter side
  CHECK((o.h == 16 && o.w == 32 && o.c == 1));
  o = parse(R"([{"type": "resize", "size": 10}])").output_shape({45, 30, 1});  // int(10 * 1.5)
  CHECK((o.h == 15 && o.w == 10));
  CHECK_THROWS_WITH(parse(R"([{"type": "pad_crop", "pad": 1, "size": 8}])").output_shape({4, 4, 1}),
                    Contains("transforms[0] (pad_crop): size [8, 8] is larger than the padded "
                             "input 4x4 + 2 x 1"));
  CHECK_THROWS_WITH(p.output_shape({32, 32, 1}),
                    Contains("transforms[5] (normalize): has 3 mean/std values for 1 channel"));
  CHECK_THROWS_WITH(parse(R"([{"type": "color_jitter", "hue": 0.1}])").output_shape({4, 4, 2}),
                    Contains("needs 1 or 3 channels"));
}

TEST_CASE("to_json round-trips, and the eval counterpart is deterministic", "[data][augment]") {
  for (const json& j : {seed_pipeline_json(), cifar_pipeline_json()}) {
    const AugmentPipeline p = AugmentPipeline::from_json(j);
    CHECK(AugmentPipeline::from_json(p.to_json()).to_json() == p.to_json());
    CHECK_FALSE(p.deterministic());
    CHECK(p.has_normalize());
  }
  const AugmentPipeline seed_eval =
      AugmentPipeline::from_json(seed_pipeline_json()).eval_pipeline();
  CHECK(seed_eval.deterministic());
  CHECK(seed_eval.to_json() == AugmentPipeline::from_json(seed_eval_pipeline_json()).to_json());
  const AugmentPipeline cifar_eval =
      AugmentPipeline::from_json(cifar_pipeline_json()).eval_pipeline();
  CHECK(cifar_eval.to_json()[0]["type"] == "center_crop");
  CHECK(cifar_eval.to_json()[1] ==
        AugmentPipeline::from_json(cifar_eval_pipeline_json()).to_json()[0]);
}

TEST_CASE("pipelines from JSON files", "[data][augment]") {
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string good = dir + "/osprey_test_augment_good.json";
  const std::string bad = dir + "/osprey_test_augment_bad.json";
  std::ofstream(good) << cifar_pipeline_json().dump(2);
  std::ofstream(bad) << R"([{"type": "hflip", "p": 0.5},])";
  CHECK(AugmentPipeline::from_json_file(good).to_json() ==
        AugmentPipeline::from_json(cifar_pipeline_json()).to_json());
  CHECK_THROWS_WITH(AugmentPipeline::from_json_file(bad),
                    Contains("osprey_test_augment_bad.json': invalid JSON at byte"));
  std::ofstream(bad) << R"([{"type": "hflip", "p": 2}])";
  CHECK_THROWS_WITH(AugmentPipeline::from_json_file(bad),
                    Contains("osprey_test_augment_bad.json': augmentation transforms[0] (hflip)"));
  CHECK_THROWS_WITH(AugmentPipeline::from_json_file(dir + "/osprey_no_such.json"),
                    Contains("cannot open"));
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST_CASE("pipeline results equal the transforms and normalize_into", "[data][augment]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(3, 2, 2, 3);
  const std::vector<int64_t> idx = {2, 0, 1};
  // A lone normalize gives exactly normalize_into's values (same float expression).
  const AugmentPipeline norm =
      parse(R"([{"type": "normalize", "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2]}])");
  std::vector<float> want(3 * 12);
  normalize_into(ds, idx.data(), 3, Normalize{{0.1f, 0.2f, 0.3f}, {0.5f, 0.25f, 2.0f}},
                 want.data());
  CHECK(run_batch(norm, ds, idx, 0, 1) == want);

  // resize then hflip (p = 1) on pixels / 255.
  const AugmentPipeline rf =
      parse(R"([{"type": "resize", "size": [4, 4]}, {"type": "hflip", "p": 1}])");
  std::vector<float> img(12), big(48), flipped(48), got(48);
  for (int k = 0; k < 12; ++k) img[size_t(k)] = float(ds.pixels[size_t(12 + k)]) / 255.0f;
  tf::resize_bilinear(img.data(), 2, 2, 3, big.data(), 4, 4);
  tf::hflip(big.data(), 4, 4, 3, flipped.data());
  rf.apply(ds.pixels.data() + 12, 2, 2, 3, 1, 2, 3, got.data());
  CHECK(got == flipped);

  // Brightness given as a fixed [2, 2] range is adjust_brightness(2).
  const AugmentPipeline bright = parse(R"([{"type": "color_jitter", "brightness": [2, 2]}])");
  bright.apply(ds.pixels.data(), 2, 2, 3, 5, 0, 0, got.data());
  for (int k = 0; k < 12; ++k) img[size_t(k)] = float(ds.pixels[size_t(k)]) / 255.0f;
  tf::adjust_brightness(img.data(), 4, 3, 2.0f);
  CHECK(std::vector<float>(got.begin(), got.begin() + 12) == img);

  // eval_into refuses a random pipeline, accepts a deterministic one.
  std::vector<float> out(48 * 3);
  CHECK_THROWS_WITH(eval_into(rf, ds, idx.data(), 3, 0, out.data()), Contains("random"));
  eval_into(parse(R"([{"type": "resize", "size": [4, 4]}])"), ds, idx.data(), 3, 0, out.data());
  CHECK(std::vector<float>(out.begin() + 96, out.begin() + 144) == big);  // idx[2] is sample 1

  // pad_crop with the padded size has one possible offset: the whole padded image.
  const AugmentPipeline pad = parse(R"([{"type": "pad_crop", "pad": 1, "size": 4, "fill": 0.5}])");
  std::vector<float> padded(48);
  pad.apply(ds.pixels.data(), 2, 2, 3, 9, 1, 0, padded.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const bool inside = y >= 1 && y <= 2 && x >= 1 && x <= 2;
        const float want =
            inside ? float(ds.pixels[size_t(((y - 1) * 2 + (x - 1)) * 3 + ch)]) / 255.0f : 0.5f;
        CHECK(padded[size_t((y * 4 + x) * 3 + ch)] == want);
      }
}

TEST_CASE("draws depend only on (seed, epoch, index)", "[data][augment]") {
  const Dataset ds = osprey::tests::make_synthetic_dataset(6, 32, 32, 3);
  const AugmentPipeline p = AugmentPipeline::from_json(seed_pipeline_json());
  const size_t isz = 224 * 224 * 3;
  const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5};
  const std::vector<float> one = run_batch(p, ds, all, 3, 1);
  CHECK(run_batch(p, ds, all, 3, 2) == one);  // 2 threads
  // Batches of 2, in another order: each sample is the same as in the single batch.
  for (const std::vector<int64_t>& part : {std::vector<int64_t>{4, 1}, {5, 0}, {3, 2}}) {
    const std::vector<float> got = run_batch(p, ds, part, 3, 2);
    for (size_t i = 0; i < part.size(); ++i) {
      const size_t k = size_t(part[i]);
      CHECK(std::equal(got.begin() + i * isz, got.begin() + (i + 1) * isz, one.begin() + k * isz));
    }
  }
  // apply on one sample agrees too.
  std::vector<float> single(isz);
  p.apply(ds.pixels.data() + 4 * 32 * 32 * 3, 32, 32, 3, 7, 3, 4, single.data());
  CHECK(std::equal(single.begin(), single.end(), one.begin() + 4 * isz));
  // Another epoch changes every sample.
  const std::vector<float> other = run_batch(p, ds, all, 4, 1);
  for (size_t k = 0; k < all.size(); ++k)
    CHECK_FALSE(
        std::equal(other.begin() + k * isz, other.begin() + (k + 1) * isz, one.begin() + k * isz));
}

TEST_CASE("random crops differ between epochs; hflip follows p", "[data][augment]") {
  const Dataset ds = osprey::tests::make_synthetic_dataset(40, 16, 16, 1);
  std::vector<int64_t> idx(40);
  for (int i = 0; i < 40; ++i) idx[size_t(i)] = i;
  const AugmentPipeline crop =
      parse(R"([{"type": "random_resized_crop", "size": 8, "scale": [0.2, 0.6]}])");
  const std::vector<float> e0 = run_batch(crop, ds, idx, 0, 1), e1 = run_batch(crop, ds, idx, 1, 1);
  int differ = 0;
  for (size_t k = 0; k < 40; ++k)
    differ += !std::equal(e0.begin() + k * 64, e0.begin() + (k + 1) * 64, e1.begin() + k * 64);
  CHECK(differ >= 38);

  // Flips of 2000 one-row images: a binomial(2000, 0.5) count lies in [900, 1100] except with
  // probability ~1e-5 (and the seed is fixed, so the test is not flaky).
  Dataset rows = osprey::tests::make_synthetic_dataset(2000, 1, 2, 1);
  for (int i = 0; i < 2000; ++i)
    rows.pixels[size_t(2 * i)] = 0, rows.pixels[size_t(2 * i + 1)] = 255;
  std::vector<int64_t> ri(2000);
  for (int i = 0; i < 2000; ++i) ri[size_t(i)] = i;
  const std::vector<float> f = run_batch(parse(R"([{"type": "hflip"}])"), rows, ri, 0, 2);
  int flipped = 0;
  for (int i = 0; i < 2000; ++i) flipped += f[size_t(2 * i)] == 1.0f;
  CHECK((flipped > 900 && flipped < 1100));
}

TEST_CASE("grayscale replication to 3 channels", "[data][augment]") {
  Dataset ds = osprey::tests::make_synthetic_dataset(2, 2, 2, 1);
  const std::vector<int64_t> idx = {1, 0};
  const std::vector<float> rgb = run_batch(parse("[]"), ds, idx, 0, 1, 3);
  REQUIRE(rgb.size() == 2 * 4 * 3);
  for (int p = 0; p < 4; ++p)
    for (int ch = 0; ch < 3; ++ch)
      CHECK(rgb[size_t(3 * p + ch)] == float(ds.pixels[size_t(4 + p)]) / 255.0f);
  CHECK_THROWS_WITH(run_batch(parse("[]"), ds, idx, 0, 1, 2), Contains("grayscale -> 3"));

  Dataset copy = ds;
  replicate_channels(copy, 3);
  CHECK(copy.c == 3);
  std::vector<float> a(24), b(24);
  normalize_into(copy, idx.data(), 2, Normalize{}, a.data());
  normalize_into(ds, idx.data(), 2, Normalize{}, 3, b.data());
  CHECK(a == b);
  CHECK(a == rgb);
  replicate_channels(copy, 3);  // no-op
  CHECK(copy.pixels.size() == 24);
  CHECK_THROWS_WITH(replicate_channels(copy, 1), Contains("only 1 -> 3"));
}

TEST_CASE("BatchLoader with augmentation", "[data][augment][loader]") {
  const Dataset ds = osprey::tests::make_synthetic_dataset(10, 8, 8, 1);
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.seed = 7;
  lo.channels = 3;
  lo.augment_threads = 2;
  lo.augment = std::make_shared<const AugmentPipeline>(
      parse(R"([{"type": "pad_crop", "pad": 2, "size": 6}, {"type": "hflip"}])"));
  lo.normalize = {{0.5f}, {0.25f}};  // appended to the pipeline
  BatchLoader loader(ds, lo);
  CHECK(
      (loader.image_shape().h == 6 && loader.image_shape().w == 6 && loader.image_shape().c == 3));
  const AugmentPipeline full = lo.augment->with_normalize({0.5f}, {0.25f});
  for (int epoch : {0, 1}) {
    loader.start_epoch(epoch);
    Batch b;
    while (loader.next(b)) {
      CHECK((b.h == 6 && b.w == 6 && b.c == 3));
      std::vector<float> want(b.images.size());
      augment_batch(full, ds, b.indices.data(), b.n, 7, epoch, 3, want.data(), 1);
      CHECK(b.images == want);
    }
  }
  lo.augment = std::make_shared<const AugmentPipeline>(
      parse(R"([{"type": "normalize", "mean": 0.5, "std": 0.5}])"));
  CHECK_THROWS_WITH(BatchLoader(ds, lo), Contains("given twice"));
  lo.augment = nullptr;
  lo.channels = 2;
  CHECK_THROWS_WITH(BatchLoader(ds, lo), Contains("channels 2"));

  // Without augmentation but with channels = 3: normalize_into's replicated values.
  lo.channels = 3;
  lo.shuffle = false;
  BatchLoader plain(ds, lo);
  plain.start_epoch(0);
  Batch b;
  REQUIRE(plain.next(b));
  CHECK(b.c == 3);
  std::vector<float> want(b.images.size());
  normalize_into(ds, b.indices.data(), b.n, lo.normalize, 3, want.data());
  CHECK(b.images == want);
}
