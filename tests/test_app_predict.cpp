// `osprey eval` and `osprey predict` on a checkpoint trained on real Fashion-MNIST (Debian's
// dataset-fashion-mnist): a PNG of a test image, written by the test, is classified like the
// evaluation path classifies the same image, and correctly.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "data/idx.h"
#include "tests/image_support.h"
#include "tools/inference.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

TEST_CASE("predict classifies PNGs of Fashion-MNIST test images from a trained checkpoint") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) {
    WARN("dataset-fashion-mnist is not installed: skipping");
    return;
  }
  fs::path tmp = fs::temp_directory_path() / ("osprey_predict_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  tools::TrainConfig cfg;
  cfg.name = "fm";
  cfg.runs_dir = (tmp / "runs").string();
  cfg.limit_train = 6000;
  cfg.limit_test = 500;
  cfg.epochs = 1;
  cfg.threads = 2;
  cfg.progress = false;
  double accuracy = tools::run_train(cfg).accuracy;
  REQUIRE(accuracy > 0.6);

  data::Dataset test = data::load_idx_dataset(dir, false, "fashion-mnist");
  tools::TrainedModel tm = tools::load_trained((tmp / "runs" / "fm").string(), {});
  REQUIRE(tm.input.class_names[9] == "Ankle boot");
  tools::Evaluation ev = tools::run_eval(tm);
  REQUIRE(ev.samples == 500);
  REQUIRE(ev.accuracy() == Approx(accuracy));

  std::vector<std::string> paths;
  for (int i = 0; i < 8; ++i) {
    std::string p = (tmp / ("test" + std::to_string(i) + ".png")).string();
    tests::write_png(p, test.pixels.data() + i * 784, 28, 28, 1);
    paths.push_back(p);
  }
  std::vector<tools::Prediction> preds = tools::run_predict(tm, paths, 3, 0.5f);
  REQUIRE(preds.size() == 8);
  int right = 0;
  for (int i = 0; i < 8; ++i) {
    const auto& top = preds[size_t(i)].top;
    REQUIRE(top.size() == 3);
    REQUIRE(top[0].second >= top[1].second);
    REQUIRE(top[1].second >= top[2].second);
    REQUIRE(preds[size_t(i)].uncertain == (top[0].second < 0.5f));
    right += top[0].first == test.labels[size_t(i)];
  }
  // Test image 0 is an ankle boot, the easiest class; most of the first 8 must be right.
  REQUIRE(preds[0].top[0].first == 9);
  REQUIRE(right >= 6);

  std::string text = (tmp / "notes.txt").string();
  { std::ofstream(text) << "not an image"; }
  REQUIRE_THROWS_WITH(tools::run_predict(tm, {text}, 3, 0.5f), Catch::Contains("notes.txt"));
  fs::remove_all(tmp);
}

TEST_CASE("predict refuses non-finite scores instead of printing nan%") {
  // A model whose weights overflow on the input: loading refuses NaN/Inf weights, so the weights
  // are set in memory here (as a finite but huge checkpoint would overflow them at run time).
  tools::TrainedModel tm;
  tm.cfg.model = "simple_cnn";
  tm.input.h = tm.input.w = 28, tm.input.c = 1, tm.input.num_classes = 10;
  tm.input.source = {28, 28, 1};
  for (int k = 0; k < 10; ++k) tm.input.class_names.push_back(std::to_string(k));
  tm.input.eval_pipeline =
      nlohmann::json::parse(R"([{"type": "normalize", "mean": [0.5], "std": [0.5]}])");
  tm.model = tools::create_model_for(tm.cfg, tm.input);
  tm.model->eval();
  data::Image img;
  img.h = img.w = 28, img.c = 1;
  img.pixels.assign(28 * 28, 200);
  tm.net = tm.model->inference_net();
  REQUIRE(tools::predict_images(tm, {img}, 3, 0.5f).size() == 1);  // finite weights: an answer

  Tensor flat = tm.model->params().flat_data();
  float* w = flat.data<float>();
  for (int64_t i = 0; i < flat.numel(); ++i) w[i] = 1e30f;
  tm.net = tm.model->inference_net();
  REQUIRE_THROWS_WITH(tools::predict_images(tm, {img}, 3, 0.5f),
                      Catch::Contains("predict: image 1 of 1") && Catch::Contains("not a finite"));
  fs::path tmp = fs::temp_directory_path() / ("osprey_predict_nan_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const std::string png = (tmp / "x.png").string();
  tests::write_png(png, img.pixels.data(), 28, 28, 1);
  REQUIRE_THROWS_WITH(tools::run_predict(tm, {png}, 3, 0.5f),
                      Catch::Contains("x.png") && Catch::Contains("not a finite"));
  fs::remove_all(tmp);
}
