// The trainer as a library user drives it: a model of their own registered by name, their own
// data in memory, and callbacks after every step and epoch.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/init.h"
#include "engine/ops.h"
#include "models/registry.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

// Logistic regression over the flattened image: enough for a separable problem.
class LinearProbe : public Model {
 public:
  explicit LinearProbe(const models::ModelSpec& s) {
    const int in = s.height * s.width * s.in_channels;
    w_ = params_.add("fc.weight", {s.num_classes, in});
    b_ = params_.add("fc.bias", {s.num_classes});
    params_.finalize();
    Rng rng(s.seed);
    init::torch_default(w_, b_, in, rng);
  }
  Tensor forward(const Tensor& x) override { return ops::linear(ops::flatten(x), w_, b_); }
  std::string name() const override { return "linear_probe"; }
  std::vector<std::string> classifier_prefixes() const override { return {"fc."}; }

 private:
  Tensor w_, b_;
};

// n 6x6 images: class 1 lights the top half, class 0 the bottom half, with noise.
data::Dataset halves(int n, uint32_t seed, const std::string& name) {
  data::Dataset ds;
  ds.name = name;
  ds.n = n, ds.h = 6, ds.w = 6, ds.c = 1, ds.num_classes = 2;
  ds.class_names = {"bottom", "top"};
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    const int label = i % 2;
    ds.labels.push_back(label);
    for (int p = 0; p < 36; ++p) {
      const bool lit = (p < 18) == (label == 1);
      ds.pixels.push_back(uint8_t((lit ? 160 : 40) + int(rng.uniform() * 60.0f)));
    }
  }
  return ds;
}

tools::TrainConfig probe_config(const fs::path& runs) {
  tools::TrainConfig cfg;
  cfg.name = "probe";
  cfg.model = "linear_probe";
  cfg.dataset = "custom";
  cfg.runs_dir = runs.string();
  cfg.epochs = 3;
  cfg.batch_size = 16;
  cfg.lr = 0.05f;
  cfg.mean = {0.5f};
  cfg.std = {0.25f};
  cfg.threads = 1;
  cfg.progress = false;
  cfg.plot = false;
  return cfg;
}

std::shared_ptr<const tools::DataSplits> probe_data() {
  auto splits = std::make_shared<tools::DataSplits>();
  splits->train = halves(128, 1, "halves-train");
  splits->test = halves(32, 2, "halves-test");
  splits->num_classes = 2;
  return splits;
}

}  // namespace

TEST_CASE("a registered model trains on a program's own data with step and epoch callbacks") {
  models::register_model(
      "linear_probe", [](const models::ModelSpec& s) { return std::make_unique<LinearProbe>(s); });
  CHECK_THROWS_WITH(models::register_model("simple_cnn", nullptr),
                    Catch::Contains("has no factory"));
  CHECK_THROWS_WITH(models::register_model("linear_probe",
                                           [](const models::ModelSpec& s) {
                                             return std::make_unique<LinearProbe>(s);
                                           }),
                    Catch::Contains("already a model name"));

  const fs::path dir = fs::temp_directory_path() / ("osprey_library_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  tools::TrainOptions options;
  options.handle_signals = false;
  options.data = probe_data();
  std::vector<tools::StepEvent> steps;
  std::vector<tools::EpochEvent> epochs;
  options.on_step = [&](const tools::StepEvent& e) { steps.push_back(e); };
  options.on_epoch = [&](const tools::EpochEvent& e) { epochs.push_back(e); };
  const tools::TrainOutcome out = tools::run_train(probe_config(dir), options);

  REQUIRE(steps.size() == 3 * 8);  // 128 images in batches of 16, three epochs
  for (size_t i = 0; i < steps.size(); ++i) {
    CHECK(steps[i].global_step == int64_t(i) + 1);
    CHECK(steps[i].epoch == int(i / 8) + 1);
    CHECK(steps[i].step_in_epoch == int64_t(i % 8) + 1);
    CHECK(steps[i].steps_per_epoch == 8);
  }
  CHECK(steps.back().loss < steps.front().loss);
  REQUIRE(epochs.size() == 3);
  CHECK(epochs.back().epoch == 3);
  CHECK(epochs.back().test_acc == Approx(100.0 * out.accuracy));
  CHECK(out.accuracy > 0.9);

  // The run folder is written as for a configured dataset, and names the model.
  std::ifstream metrics(dir / "probe" / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  CHECK(lines == 3);
  const nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "probe" / "config.json"));
  CHECK(config["model"] == "linear_probe");
  CHECK(config["dataset"] == "custom");
  fs::remove_all(dir);
}

TEST_CASE("a program's data is checked, and 'custom' needs it") {
  const fs::path dir =
      fs::temp_directory_path() / ("osprey_library_bad_" + std::to_string(::getpid()));
  tools::TrainConfig cfg = probe_config(dir);
  cfg.model = "simple_cnn";
  tools::TrainOptions options;
  options.handle_signals = false;
  CHECK_THROWS_WITH(tools::run_train(cfg, options),
                    Catch::Contains("dataset 'custom' needs the data in TrainOptions::data"));
  auto bad = std::make_shared<tools::DataSplits>(*probe_data());
  bad->train.labels[5] = 2;
  options.data = bad;
  CHECK_THROWS_WITH(tools::run_train(cfg, options),
                    Catch::Contains("image 5 of split 'halves-train' has label 2, outside [0, 2)"));
  cfg.dataset = "fashion-mnist";
  options.data = probe_data();
  CHECK_THROWS_WITH(tools::run_train(cfg, options),
                    Catch::Contains("set the config's dataset to 'custom'"));
  fs::remove_all(dir);
}
