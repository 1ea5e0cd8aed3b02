// `osprey eval` and `osprey predict` on a checkpoint trained on real Fashion-MNIST (Debian's
// dataset-fashion-mnist): a PNG of a test image, written by the test, is classified like the
// evaluation path classifies the same image, and correctly.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include "data/idx.h"
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
  double accuracy = tools::run_train(cfg);
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
    REQUIRE(stbi_write_png(p.c_str(), 28, 28, 1, test.pixels.data() + i * 784, 28) != 0);
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
