// Run configuration: files, overrides, type checks and the resolved JSON.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/error.h"
#include "tools/cli_suggest.h"
#include "tools/config.h"

using namespace osprey;
using tools::TrainConfig;

TEST_CASE("overrides parse numbers, booleans, lists and strings") {
  TrainConfig c;
  tools::apply_override(c, "epochs=3");
  tools::apply_override(c, "lr=0.05");
  tools::apply_override(c, "nesterov=true");
  tools::apply_override(c, "mean=[0.5]");
  tools::apply_override(c, "optimizer=sgd");
  tools::apply_override(c, "name=with=equals");
  REQUIRE(c.epochs == 3);
  REQUIRE(c.lr == Approx(0.05));
  REQUIRE(c.nesterov);
  REQUIRE(c.mean == std::vector<float>{0.5f});
  REQUIRE(c.optimizer == "sgd");
  REQUIRE(c.name == "with=equals");
}

TEST_CASE("unknown keys and wrong types are refused by name") {
  TrainConfig c;
  REQUIRE_THROWS_WITH(tools::apply_override(c, "epoch=3"),
                      Catch::Contains("unknown config key 'epoch' (did you mean 'epochs'?)") &&
                          Catch::Contains("osprey config --list"));
  REQUIRE_THROWS_AS(tools::apply_override(c, "epoch=3"), tools::UsageError);
  REQUIRE_THROWS_AS(tools::apply_override(c, "epochs=2.5"), tools::UsageError);
  REQUIRE_THROWS_WITH(tools::apply_override(c, "epochs=2.5"),
                      Catch::Contains("'epochs'") && Catch::Contains("not an integer"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "lr=fast"),
                      Catch::Contains("'lr'") && Catch::Contains("not a number"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "noequals"), Catch::Contains("key=value"));
  REQUIRE(c.epochs == TrainConfig{}.epochs);  // a refused override changes nothing
}

TEST_CASE("config files: resolved JSON round-trips, bad files are named") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("osprey_cfg_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TrainConfig c;
  c.epochs = 2;
  c.schedule = "cosine";
  std::ofstream((dir / "a.json").string()) << tools::to_json(c).dump();
  TrainConfig back = tools::load_config_file((dir / "a.json").string());
  REQUIRE(tools::to_json(back) == tools::to_json(c));

  std::ofstream((dir / "b.json").string()) << "{\"epochs\": 2,";
  REQUIRE_THROWS_WITH(tools::load_config_file((dir / "b.json").string()),
                      Catch::Contains("b.json") && Catch::Contains("not valid JSON"));
  std::ofstream((dir / "c.json").string()) << "{\"batchsize\": 2}";
  REQUIRE_THROWS_WITH(tools::load_config_file((dir / "c.json").string()),
                      Catch::Contains("c.json") && Catch::Contains("'batchsize'"));
  fs::remove_all(dir);
}

TEST_CASE("shipped configs load and validate") {
  std::string dir = std::string(OSPREY_SOURCE_DIR) + "/configs";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path());
    TrainConfig c = tools::load_config_file(e.path().string());
    REQUIRE_NOTHROW(tools::validate(c));
    ++n;
  }
  REQUIRE(n >= 1);
}

TEST_CASE("validation names the bad value") {
  TrainConfig c;
  c.epochs = 0;
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("epochs"));
  c = TrainConfig{};
  c.mean = {0.1f, 0.2f};
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("mean and std"));
  c = TrainConfig{};
  c.precision = "fp16";
  REQUIRE_THROWS_WITH(tools::validate(c),
                      Catch::Contains("config: key 'precision': 'fp16' is not one of f32, bf16"));
  REQUIRE_THROWS_AS(tools::validate(c), tools::UsageError);
  c.precision = "bf16";
  tools::validate(c);
  c.pipeline_stages = 2;
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("bf16 does not run with pipeline"));
  c = TrainConfig{};
  c.augment_device = "gpu";
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("key 'augment_device': 'gpu'"));
  c.augment_device = "cuda";
  tools::validate(c);  // device auto
  c.device = "cpu";
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("augment_device cuda needs device"));
}
