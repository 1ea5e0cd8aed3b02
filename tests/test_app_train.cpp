// End to end: `osprey train`'s loop on a small learnable IDX dataset that the test writes.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "engine/state_dict.h"
#include "models/simple_cnn.h"
#include "tests/tiny_idx.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

TEST_CASE("training on a small dataset lowers the loss and writes the run directory") {
  fs::path dir = fs::temp_directory_path() / ("osprey_train_" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  tests::write_tiny_idx_split(dir / "data", "train", 400, 1);
  tests::write_tiny_idx_split(dir / "data", "t10k", 100, 2);
  tools::TrainConfig cfg;
  cfg.name = "tiny";
  cfg.dataset = "mnist";
  cfg.data_dir = (dir / "data").string();
  cfg.runs_dir = (dir / "runs").string();
  cfg.epochs = 3;
  cfg.batch_size = 32;
  cfg.mean = {0.2f};
  cfg.std = {0.3f};
  cfg.threads = 2;
  cfg.progress = false;
  double acc = tools::run_train(cfg).accuracy;
  REQUIRE(acc > 0.9);

  fs::path run = dir / "runs" / "tiny";
  std::ifstream metrics(run / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(metrics, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 3);
  REQUIRE(lines[2]["train_loss"].get<double>() < lines[0]["train_loss"].get<double>());
  REQUIRE(lines[2]["test_samples"].get<int>() == 100);
  REQUIRE(lines[2]["test_acc"].get<double>() == Approx(100.0 * acc));  // percent
  nlohmann::json resolved = nlohmann::json::parse(std::ifstream(run / "config.json"));
  REQUIRE(resolved["epochs"] == 3);

  // The checkpoint's state_dict is PyTorch-shaped and loads into a fresh model (its
  // optimizer.* entries are the optimizer's, hence not strict).
  models::SimpleCnn fresh(1, 12, 12, 4, 99);
  load_torch_state_dict(fresh.params(), SafeTensorsFile::read((run / "last.safetensors").string()),
                        /*strict=*/false);
  REQUIRE(fs::exists(run / "best.safetensors"));
  fs::remove_all(dir);
}

TEST_CASE("a missing dataset directory fails before anything is written") {
  fs::path dir = fs::temp_directory_path() / ("osprey_train_missing_" + std::to_string(::getpid()));
  tools::TrainConfig cfg;
  cfg.data_dir = (dir / "nowhere").string();
  cfg.runs_dir = (dir / "runs").string();
  REQUIRE_THROWS_WITH(tools::run_train(cfg), Catch::Contains((dir / "nowhere").string()));
  REQUIRE_FALSE(fs::exists(dir / "runs"));
}
