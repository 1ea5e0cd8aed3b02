// The command line that helps: suggestions by edit distance, the key reference generated from
// the config table, config file paths, exact floats in config.json, and CLI11's errors rewritten.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/test_support.h"
#include "tools/cli_app.h"
#include "tools/cli_help.h"
#include "tools/cli_suggest.h"
#include "tools/config.h"

using namespace osprey;
using osprey::tests::TempDir;
using tools::TrainConfig;

TEST_CASE("edit distance counts a swap of neighbours as one edit", "[cli]") {
  REQUIRE(tools::edit_distance("trian", "train") == 1);
  REQUIRE(tools::edit_distance("kitten", "sitting") == 3);
  REQUIRE(tools::edit_distance("", "abc") == 3);
  REQUIRE(tools::edit_distance("same", "same") == 0);
}

TEST_CASE("the closest config key, command or value is suggested, a far one is not", "[cli]") {
  const std::vector<std::string> keys = tools::config_keys();
  REQUIRE(tools::closest_match("epoch", keys) == "epochs");
  REQUIRE(tools::closest_match("optimiser", keys) == "optimizer");
  REQUIRE(tools::closest_match("lr_rate", keys) == "lr");
  REQUIRE(tools::closest_match("batch", keys) == "batch_size");
  REQUIRE(tools::closest_match("bogus", keys).empty());
  REQUIRE(tools::closest_match(std::string(10000, 'x'), keys).empty());
  REQUIRE(tools::did_you_mean("trian", {"train", "verify"}) == " (did you mean 'train'?)");
  TrainConfig c;
  REQUIRE_THROWS_WITH(
      tools::apply_override(c, "optimizer=adm"),
      Catch::Contains(
          "key 'optimizer': 'adm' is not one of adam, adamw, sgd (did you mean 'adam'?)"));
  REQUIRE_THROWS_AS(tools::apply_override(c, "schedule=cosin"), tools::UsageError);
  REQUIRE_THROWS_WITH(tools::apply_override(c, "model=simple"), Catch::Contains("simple_cnn"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "augment=sed"),
                      Catch::Contains("not one of seed, cifar (did you mean 'seed'?)"));
  REQUIRE(c.optimizer == "adam");  // a refused value changes nothing
}

TEST_CASE("the key reference lists every key with its default, in 100 columns", "[cli]") {
  const std::string text = tools::config_reference_text();
  const nlohmann::json defaults = tools::to_json(TrainConfig{});
  for (const std::string& key : tools::config_keys()) {
    INFO(key);
    const std::string row_start = "\n" + key + " ";
    const size_t at = text.find(row_start);
    REQUIRE(at != std::string::npos);
    const std::string row = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
    REQUIRE_THAT(row, Catch::Contains(" " + defaults.at(key).dump()));
  }
  REQUIRE_THAT(text, Catch::Contains("adam|adamw|sgd") && Catch::Contains("provenance"));
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    REQUIRE(line.size() <= 100);
  }
}

TEST_CASE("relative paths in a config file are taken from the file's folder", "[cli][config]") {
  namespace fs = std::filesystem;
  TempDir dir;
  fs::create_directories(dir.path / "sub");
  const std::string file = dir.file("sub/run.json");
  std::ofstream(file) << R"({"data_dir": "../data/x", "init_from": "w.safetensors",
                             "runs_dir": "out"})";
  TrainConfig c = tools::load_config_file(file);
  REQUIRE(c.data_dir == (fs::absolute(dir.path) / "data/x").lexically_normal().string());
  REQUIRE(c.init_from == (fs::absolute(dir.path) / "sub/w.safetensors").string());
  REQUIRE(c.runs_dir == "out");  // output goes where osprey runs
  std::ofstream(file) << R"({"data_dir": "/abs/data"})";
  REQUIRE(tools::load_config_file(file).data_dir == "/abs/data");
  // The shipped configs name their data beside the configs/ folder.
  const fs::path source = fs::absolute(OSPREY_SOURCE_DIR);
  const std::string tmnist = (source / "configs/tmnist_simple_cnn.json").string();
  REQUIRE(tools::load_config_file(tmnist).data_dir ==
          (source / "data/TMNIST_Data.csv").lexically_normal().string());
  // --set: relative to the working directory.
  tools::apply_override(c, "data_dir=here");
  REQUIRE(c.data_dir == (fs::current_path() / "here").string());
}

TEST_CASE("a run's config.json with its provenance reads back as a config", "[cli][config]") {
  TrainConfig c;
  nlohmann::json j = tools::to_json(TrainConfig{});
  j["epochs"] = 3;
  j["provenance"] = {{"version", "0.1.0"}, {"commit", "abc"}, {"host", "h"}};
  tools::apply_json(c, j, "config.json");
  REQUIRE(c.epochs == 3);
  j["provenance"] = "text";
  REQUIRE_THROWS_WITH(tools::apply_json(c, j, "config.json"),
                      Catch::Contains("'provenance' must be an object"));
}

TEST_CASE("config.json writes floats as the shortest decimal that reads back", "[cli][config]") {
  TrainConfig c;
  tools::apply_override(c, "lr=0.001");
  const nlohmann::json j = tools::to_json(c);
  REQUIRE(j.at("lr").dump() == "0.001");
  REQUIRE(j.at("eps").dump() == "1e-08");
  REQUIRE(j.at("mean").dump() == "[0.286]");
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    float a, b;
    do {  // random finite bit patterns, from subnormal to huge
      const uint32_t bits_a = rng(), bits_b = rng();
      std::memcpy(&a, &bits_a, 4), std::memcpy(&b, &bits_b, 4);
    } while (!std::isfinite(a) || !std::isfinite(b));
    c.lr = a, c.mean = {a, b}, c.std = {b, a};
    TrainConfig back;
    tools::apply_json(back, nlohmann::json::parse(tools::to_json(c).dump()), "round trip");
    INFO(a << " " << b);
    REQUIRE(std::memcmp(&back.lr, &c.lr, 4) == 0);
    REQUIRE(std::memcmp(back.mean.data(), c.mean.data(), 8) == 0);
    REQUIRE(std::memcmp(back.std.data(), c.std.data(), 8) == 0);
  }
}

namespace {

// Parses a command line with an app shaped like osprey's: train (--config, --set), bench train.
int parse(const std::vector<std::string>& args) {
  CLI::App app{"test"};
  app.name("osprey");
  std::vector<std::string> sets;
  auto* train = app.add_subcommand("train", "Train a model. More");
  train->add_option("--set", sets, "Override one key");
  train->add_option("--config", sets, "A file");
  app.add_subcommand("bench", "Benchmarks")->add_subcommand("train", "Time training steps");
  return tools::parse_command_line(app, args);
}

}  // namespace

TEST_CASE("command line mistakes are usage errors with a suggestion", "[cli]") {
  REQUIRE(parse({"train", "--set", "epochs=2"}) == -1);
  REQUIRE(parse({}) == 2);         // no command: the short usage
  REQUIRE(parse({"bench"}) == 2);  // no bench command
  REQUIRE(parse({"help", "bench", "train"}) == 0);
  REQUIRE_THROWS_WITH(parse({"trian"}), "unknown command 'trian'; did you mean 'train'?");
  REQUIRE_THROWS_WITH(parse({"help", "bnech"}), "unknown command 'bnech'; did you mean 'bench'?");
  REQUIRE_THROWS_WITH(parse({"bench", "trian"}),
                      "bench: unknown command 'trian'; did you mean 'train'?");
  REQUIRE_THROWS_WITH(parse({"train", "--epochs", "1"}),
                      "train: unknown option '--epochs'; did you mean '--set epochs=1'?");
  REQUIRE_THROWS_WITH(parse({"train", "--epoch=4"}),
                      "train: unknown option '--epoch'; did you mean '--set epochs=4'?");
  REQUIRE_THROWS_WITH(parse({"train", "--confi", "x"}),
                      "train: unknown option '--confi'; did you mean '--config'?");
  REQUIRE_THROWS_AS(parse({"train", "--set"}), tools::UsageError);  // CLI11's own error
  REQUIRE_THROWS_WITH(parse({"train", "stray"}), Catch::Contains("unexpected argument 'stray'"));
}
