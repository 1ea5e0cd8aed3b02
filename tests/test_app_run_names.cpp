// A new run never replaces another: default names count up, a named run that exists is refused
// unless --overwrite, a finished run resumed is left as it is, and a run's files record what
// made them (provenance, timestamps, train accuracy, learning rate).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_support.h"
#include "tests/tiny_run.h"
#include "tools/build_info.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

using tests::TinyRun;

std::vector<nlohmann::json> metrics_of(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("two trainings with default names leave two runs", "[run_names]") {
  TinyRun d("names");
  tools::TrainConfig cfg = d.config("", "simple_cnn", 1);
  const tools::TrainOutcome first = tools::run_train(cfg);
  const tools::TrainOutcome second = tools::run_train(cfg);
  REQUIRE(fs::path(first.run_dir).filename() == "simple_cnn_mnist_1");
  REQUIRE(fs::path(second.run_dir).filename() == "simple_cnn_mnist_2");
  for (const auto& run : {first.run_dir, second.run_dir}) {
    REQUIRE(fs::is_regular_file(fs::path(run) / "best.safetensors"));
    REQUIRE(metrics_of(run).size() == 1);
  }
  // Numbers count on from the highest, so a deleted run's number is not reused.
  fs::remove_all(first.run_dir);
  REQUIRE(fs::path(tools::run_train(cfg).run_dir).filename() == "simple_cnn_mnist_3");
  // The stored config names the run, so --resume finds it.
  REQUIRE(tools::config_from_checkpoint(d.last("simple_cnn_mnist_3")).name == "simple_cnn_mnist_3");
}

TEST_CASE("a named run that exists is refused unless overwritten", "[run_names]") {
  TinyRun d("named");
  const tools::TrainConfig cfg = d.config("mine", "simple_cnn", 1);
  tools::run_train(cfg);
  const std::string best = bytes_of(d.run("mine") / "best.safetensors");
  REQUIRE_THROWS_WITH(tools::run_train(cfg),
                      Catch::Contains("run '" + d.run("mine").string() + "' already exists") &&
                          Catch::Contains("--overwrite") && Catch::Contains("best test accuracy"));
  REQUIRE(bytes_of(d.run("mine") / "best.safetensors") == best);  // untouched

  tools::TrainConfig other = cfg;
  other.seed = 7;
  tools::TrainOptions overwrite;
  overwrite.overwrite = true;
  tools::run_train(other, overwrite);
  REQUIRE(bytes_of(d.run("mine") / "best.safetensors") != best);
  REQUIRE(metrics_of(d.run("mine")).size() == 1);
}

TEST_CASE("resuming a finished run changes nothing; more epochs continue it", "[run_names]") {
  TinyRun d("finished");
  tools::TrainConfig cfg = d.config("done", "simple_cnn", 2);
  tools::run_train(cfg);
  const std::string last = bytes_of(d.run("done") / "last.safetensors");
  const std::string metrics = bytes_of(d.run("done") / "metrics.jsonl");

  const tools::TrainOutcome again =
      tools::run_train(cfg, tools::TrainOptions::resuming(d.last("done")));
  REQUIRE(again.best_epoch >= 1);
  REQUIRE(bytes_of(d.run("done") / "last.safetensors") == last);
  REQUIRE(bytes_of(d.run("done") / "metrics.jsonl") == metrics);

  // Three epochs straight and two then one more end in the same state.
  tools::run_train(d.config("straight", "simple_cnn", 3));
  tools::TrainConfig longer = cfg;
  longer.epochs = 3;
  tools::run_train(longer, tools::TrainOptions::resuming(d.last("done")));
  REQUIRE(metrics_of(d.run("done")).size() == 3);
  tests::require_identical_tensors(d.last("straight"), d.last("done"));
}

TEST_CASE("a run records its provenance and per-epoch times, accuracies and rates", "[run_names]") {
  TinyRun d("provenance");
  tools::TrainConfig cfg = d.config("p", "simple_cnn", 2);
  cfg.log_every_steps = 3;
  tools::TrainOptions options;
  options.command_line = "osprey train --name p";
  tools::run_train(cfg, options);

  const auto config = nlohmann::json::parse(std::ifstream(d.run("p") / "config.json"));
  const auto& prov = config.at("provenance");
  REQUIRE(prov.at("command_line") == "osprey train --name p");
  REQUIRE(prov.at("git_commit") == tools::build_info().commit);
  REQUIRE(prov.at("osprey_version") == tools::build_info().version);
  REQUIRE(prov.at("world_size") == 1);
  REQUIRE(prov.at("build").get<std::string>().find("gemm=") != std::string::npos);
  REQUIRE(prov.at("start_time").get<std::string>().size() == 20);  // 2026-12-01T15:04:05Z
  // The stored config reads back as a config file.
  REQUIRE(tools::load_config_file((d.run("p") / "config.json").string()).name == "p");

  const auto lines = metrics_of(d.run("p"));
  REQUIRE(lines.size() == 2);
  for (const auto& j : lines) {
    REQUIRE(j.at("train_acc").get<double>() >= 0.0);
    REQUIRE(j.at("train_acc").get<double>() <= 100.0);
    REQUIRE(j.at("test_acc").get<double>() > 1.0);  // percent, as printed
    REQUIRE(j.at("lr").get<double>() == Approx(cfg.lr));
    REQUIRE(j.at("time").get<std::string>().back() == 'Z');
  }
  REQUIRE(lines[1].at("elapsed_s").get<double>() > lines[0].at("elapsed_s").get<double>());
  // 7 steps an epoch: global steps 3, 6, 9, 12.
  std::ifstream steps(d.run("p") / "steps.jsonl");
  std::vector<int64_t> logged;
  for (std::string line; std::getline(steps, line);)
    logged.push_back(nlohmann::json::parse(line).at("step").get<int64_t>());
  REQUIRE(logged == std::vector<int64_t>{3, 6, 9, 12});
}
