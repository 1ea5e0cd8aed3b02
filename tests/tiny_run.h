// A scratch folder with the tiny IDX dataset (tests/tiny_idx.h: 200 train, 40 test images) and
// configs that train on it in seconds; removed with its runs on destruction.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/tiny_idx.h"
#include "tools/config.h"

namespace osprey::tests {

struct TinyRun {
  std::filesystem::path dir;
  explicit TinyRun(const std::string& tag) {
    dir = std::filesystem::temp_directory_path() /
          ("osprey_tinyrun_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "data");
    write_tiny_idx_split(dir / "data", "train", 200, 1);
    write_tiny_idx_split(dir / "data", "t10k", 40, 2);
  }
  ~TinyRun() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TinyRun(const TinyRun&) = delete;
  TinyRun& operator=(const TinyRun&) = delete;
  // batch_size 32: 7 batches an epoch, the last one partial.
  tools::TrainConfig config(const std::string& name, const std::string& model = "simple_cnn",
                            int epochs = 2) const {
    tools::TrainConfig cfg;
    cfg.name = name;
    cfg.model = model;
    cfg.width_mult = 0.25f;
    cfg.dataset = "mnist";
    cfg.data_dir = (dir / "data").string();
    cfg.runs_dir = (dir / "runs").string();
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.mean = {0.2f};
    cfg.std = {0.3f};
    cfg.threads = 2;
    cfg.progress = false;
    return cfg;
  }
  std::filesystem::path run(const std::string& name) const { return dir / "runs" / name; }
  std::string last(const std::string& name) const {
    return (run(name) / "last.safetensors").string();
  }
};

}  // namespace osprey::tests
