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
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

void put_u32(std::ofstream& out, uint32_t v) {
  unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.write(reinterpret_cast<char*>(b), 4);
}

// Class k: a bright 3x3 square in quadrant k of a 12x12 image, plus noise.
void write_split(const fs::path& dir, const std::string& prefix, int n, uint32_t seed) {
  std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  put_u32(img, 0x803), put_u32(img, uint32_t(n)), put_u32(img, 12), put_u32(img, 12);
  put_u32(lab, 0x801), put_u32(lab, uint32_t(n));
  uint32_t state = seed;
  auto rnd = [&] { return state = state * 1664525u + 1013904223u, state >> 24; };
  for (int i = 0; i < n; ++i) {
    int k = i % 4;
    uint8_t px[144];
    for (auto& p : px) p = uint8_t(rnd() % 60);
    int oy = (k / 2) * 6 + 1 + int(rnd() % 3), ox = (k % 2) * 6 + 1 + int(rnd() % 3);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) px[(oy + y) * 12 + ox + x] = 250;
    img.write(reinterpret_cast<char*>(px), 144);
    char l = char(k);
    lab.write(&l, 1);
  }
}

}  // namespace

TEST_CASE("training on a small dataset lowers the loss and writes the run directory") {
  fs::path dir = fs::temp_directory_path() / ("osprey_train_" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  write_split(dir / "data", "train", 400, 1);
  write_split(dir / "data", "t10k", 100, 2);
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
  double acc = tools::run_train(cfg);
  REQUIRE(acc > 0.9);

  fs::path run = dir / "runs" / "tiny";
  std::ifstream metrics(run / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(metrics, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 3);
  REQUIRE(lines[2]["train_loss"].get<double>() < lines[0]["train_loss"].get<double>());
  REQUIRE(lines[2]["test_samples"].get<int>() == 100);
  REQUIRE(lines[2]["test_acc"].get<double>() == Approx(acc));
  nlohmann::json resolved = nlohmann::json::parse(std::ifstream(run / "config.json"));
  REQUIRE(resolved["epochs"] == 3);

  // The saved state_dict is PyTorch-shaped and loads into a fresh model.
  models::SimpleCnn fresh(1, 12, 12, 4, 99);
  load_torch_state_dict(fresh.params(), SafeTensorsFile::read((run / "last.safetensors").string()));
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
