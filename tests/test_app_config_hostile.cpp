// Hostile configs: integers that would be truncated, unsafe run names, deeply nested JSON.
#include <catch2/catch.hpp>
#include <fstream>

#include "kernels/error.h"
#include "tests/test_support.h"
#include "tools/config.h"

using namespace osprey;
using osprey::tests::TempDir;
using tools::TrainConfig;

TEST_CASE("integer keys are range-checked before conversion (no silent truncation)") {
  TrainConfig c;
  // 4294967298 = 2^32 + 2 used to become 2 epochs, 2^32 + 8 a batch of 8.
  REQUIRE_THROWS_WITH(tools::apply_override(c, "epochs=4294967298"),
                      Catch::Contains("'epochs'") && Catch::Contains("out of range") &&
                          Catch::Contains("[1, 1000000]"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "batch_size=4294967304"),
                      Catch::Contains("'batch_size'") && Catch::Contains("[1, 1048576]"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "epochs=0"), Catch::Contains("'epochs'"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "threads=-1"), Catch::Contains("'threads'"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "limit_train=18446744073709551615"),
                      Catch::Contains("'limit_train'"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "pipeline_stages=-4294967295"),
                      Catch::Contains("'pipeline_stages'"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "lr=1e300"), Catch::Contains("'lr'"));
  REQUIRE_THROWS_WITH(tools::apply_override(c, "mean=[1e300]"), Catch::Contains("'mean'"));
  REQUIRE(c.epochs == TrainConfig{}.epochs);
  REQUIRE(c.batch_size == TrainConfig{}.batch_size);
  tools::apply_override(c, "limit_train=9223372036854775807");
  REQUIRE(c.limit_train == INT64_MAX);
  tools::apply_override(c, "seed=18446744073709551615");
  REQUIRE(c.seed == UINT64_MAX);
  tools::apply_override(c, "epochs=1000000");
  REQUIRE(c.epochs == 1000000);
}

TEST_CASE("run names must be one safe path component") {
  // "" is the default: the run is named <model>_<dataset>_<N>; as a folder name it is refused.
  REQUIRE_NOTHROW(tools::validate(TrainConfig{}));
  REQUIRE_THROWS_WITH(tools::validate_run_name(""), Catch::Contains("config: name"));
  for (const std::string bad : {".", "..", "a/b", "../x", "a\\b", "-rf", "a\nb", "\x1b[2J"}) {
    TrainConfig c;
    c.name = bad;
    REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("config: name"));
  }
  // The message escapes what it quotes.
  TrainConfig c;
  c.name = "\x1b]0;t\x07";
  REQUIRE_THROWS_WITH(tools::validate(c), Catch::Contains("\\x1b]0;t\\x07"));
  for (const std::string good : {"fm", "run.2", "a-b_c", "...x", "caf\xc3\xa9"}) {
    c.name = good;
    REQUIRE_NOTHROW(tools::validate_run_name(c.name));
  }
}

TEST_CASE("deeply nested JSON in a config file or --set is refused, not a stack overflow") {
  TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  { std::ofstream(dir.file("deep.json")) << "{\"augment\": " << deep << "}"; }
  // Used to crash (rc 139) in json::dump() of the augment value.
  REQUIRE_THROWS_WITH(tools::load_config_file(dir.file("deep.json")),
                      Catch::Contains("deep.json") && Catch::Contains("nested deeper than 64"));
  TrainConfig c;
  REQUIRE_THROWS_WITH(tools::apply_override(c, "augment=" + deep),
                      Catch::Contains("--set augment=") && Catch::Contains("nested deeper"));
  // Realistic nesting is fine.
  tools::apply_override(c, R"(augment=[{"type": "hflip", "p": 0.5}])");
  REQUIRE(c.augment.size() == 1);
}
