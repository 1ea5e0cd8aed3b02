// A run directory stays consistent and resumable whatever stops a run: metrics.jsonl holds one
// line per epoch a checkpoint covers, a failed checkpoint write leaves an older one to resume
// from, temporary files of killed writes are removed at start, and damaged numbers in a
// checkpoint's metadata are refused naming the file and key.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "models/registry.h"
#include "tests/test_support.h"
#include "tests/tiny_run.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

using tests::TinyRun;

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<int> epochs_of(const fs::path& metrics) {
  std::vector<int> out;
  for (const std::string& line : lines_of(metrics))
    out.push_back(nlohmann::json::parse(line).at("epoch").get<int>());
  return out;
}

long dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return long(child);
}

void touch(const fs::path& p) {
  std::ofstream(p) << "partial";
}

}  // namespace

TEST_CASE("a resumed run keeps one metrics line per epoch its checkpoint covers") {
  TinyRun d("metrics");
  tools::TrainConfig cfg = d.config("m", "simple_cnn", 2);
  tools::run_train(cfg);
  const fs::path metrics = d.run("m") / "metrics.jsonl";
  std::vector<std::string> original = lines_of(metrics);
  REQUIRE(original.size() == 2);

  // As a run killed at the wrong moments leaves it: epoch 2 twice, an epoch 3 whose checkpoint
  // was never written, a line cut by a kill.
  std::ofstream(metrics, std::ios::app) << original[1] << "\n{\"epoch\": 3, \"train_loss\": 1}\n"
                                        << "{\"epoch\": 4, \"tra";
  tools::TrainConfig more =
      tools::config_from_checkpoint((d.run("m") / "last.safetensors").string());
  more.epochs = 3;
  tools::run_train(more, tools::TrainOptions::resuming((d.run("m") / "last.safetensors").string()));
  REQUIRE(epochs_of(metrics) == std::vector<int>{1, 2, 3});
  REQUIRE(lines_of(metrics)[1] == original[1]);

  // A kill between the checkpoint and its metrics line: the checkpoint holds the line.
  std::vector<std::string> three = lines_of(metrics);
  std::ofstream(metrics) << three[0] << "\n" << three[1] << "\n";
  more.epochs = 4;
  tools::run_train(more, tools::TrainOptions::resuming((d.run("m") / "last.safetensors").string()));
  REQUIRE(epochs_of(metrics) == std::vector<int>{1, 2, 3, 4});
  REQUIRE(lines_of(metrics)[2] == three[2]);
}

TEST_CASE("a failed write of last.safetensors leaves the run resumable from best") {
  TinyRun d("order");
  tools::TrainConfig full = d.config("full", "simple_cnn", 2);
  tools::run_train(full);

  tools::TrainConfig part = d.config("part", "simple_cnn", 2);
  // A directory in last's place makes its write fail, as a full disk would.
  fs::create_directories(d.run("part") / "last.safetensors");
  REQUIRE_THROWS_WITH(tools::run_train(part), Catch::Contains("last.safetensors"));
  REQUIRE(fs::is_regular_file(d.run("part") / "best.safetensors"));
  // The metrics line comes after the checkpoints: none for an epoch whose saves failed.
  REQUIRE(lines_of(d.run("part") / "metrics.jsonl").empty());
  fs::remove(d.run("part") / "last.safetensors");

  const std::string from = tools::resolve_checkpoint(d.run("part").string(), part.runs_dir);
  REQUIRE(fs::path(from).filename() == "best.safetensors");
  tools::run_train(tools::config_from_checkpoint(from), tools::TrainOptions::resuming(from));
  tests::require_identical_tensors((d.run("full") / "last.safetensors").string(),
                                   (d.run("part") / "last.safetensors").string());
  REQUIRE(epochs_of(d.run("part") / "metrics.jsonl") == std::vector<int>{1, 2});

  // An unreadable last is passed over too; with nothing readable the error names the file.
  std::ofstream(d.run("part") / "last.safetensors", std::ios::trunc) << "garbage!";
  REQUIRE(fs::path(tools::resolve_checkpoint(d.run("part").string(), part.runs_dir)).filename() ==
          "best.safetensors");
  std::ofstream(d.run("part") / "best.safetensors", std::ios::trunc) << "garbage!";
  REQUIRE_THROWS_WITH(
      tools::resolve_checkpoint(d.run("part").string(), part.runs_dir),
      Catch::Contains("no readable checkpoint") && Catch::Contains("last.safetensors"));
}

TEST_CASE("temporary files of killed writes are removed when a run starts") {
  TinyRun d("stale");
  const fs::path run = d.run("s");
  fs::create_directories(run);
  const std::string alive = std::to_string(::getppid());
  const fs::path dead = run / (".last.safetensors.tmp." + std::to_string(dead_pid()));
  const fs::path mine = run / (".best.safetensors.tmp." + std::to_string(::getpid()));
  const fs::path old = run / (".config.json.tmp." + alive);
  const fs::path live = run / (".metrics.jsonl.tmp." + alive);  // a write in progress
  const fs::path other = run / "notes.tmp.1";                   // not one of ours
  for (const fs::path& p : {dead, mine, old, live, other}) touch(p);
  fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(2));

  tools::TrainConfig cfg = d.config("s", "simple_cnn", 1);
  cfg.stop_after_steps = 1;
  tools::run_train(cfg);
  REQUIRE_FALSE(fs::exists(dead));
  REQUIRE_FALSE(fs::exists(mine));
  REQUIRE_FALSE(fs::exists(old));
  REQUIRE(fs::exists(live));
  REQUIRE(fs::exists(other));
  REQUIRE(fs::exists(run / "last.safetensors"));
}

TEST_CASE("non-numeric or out-of-range checkpoint metadata is refused naming file and key") {
  TinyRun d("meta");
  tools::TrainConfig cfg = d.config("n", "simple_cnn", 1);
  tools::run_train(cfg);
  const std::string good = (d.run("n") / "last.safetensors").string();
  struct Case {
    std::string key, value;
  };
  for (const Case& c :
       {Case{"epoch", "x"}, Case{"rng_counter", "-1"}, Case{"global_step", "1e99"},
        Case{"step_in_epoch", "3 "}, Case{"best_accuracy", "nan"}, Case{"optimizer_steps", "-5"}}) {
    INFO(c.key << "=" << c.value);
    const std::string bad = (d.dir / ("bad_" + c.key + ".safetensors")).string();
    tests::copy_with_metadata(good, bad, c.key, c.value);
    tools::TrainConfig resumed = tools::config_from_checkpoint(bad);
    resumed.name = "n_" + c.key;
    resumed.epochs = 2;  // more to train: a finished run is reported without loading
    REQUIRE_THROWS_WITH(tools::run_train(resumed, tools::TrainOptions::resuming(bad)),
                        Catch::Contains(bad) && Catch::Contains("'" + c.key + "'") &&
                            Catch::Contains("'" + c.value + "'"));
    REQUIRE_FALSE(fs::exists(d.run(resumed.name)));  // refused before anything is written
  }
}
