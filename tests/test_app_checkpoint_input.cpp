// The model input description stored in a checkpoint comes from a file: sizes that int()
// would wrap, a class-name list shorter than the classes, and deep nesting are refused by name.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "kernels/error.h"
#include "tests/test_support.h"
#include "tools/inference.h"

using namespace osprey;
using nlohmann::json;
using osprey::tests::TempDir;

namespace {

json good_input() {
  return {{"h", 28},
          {"w", 28},
          {"c", 1},
          {"classes", 2},
          {"class_names", {"a", "b"}},
          {"source", {28, 28, 1}},
          {"eval_pipeline", json::array()}};
}

std::string write_checkpoint(const TempDir& dir, const std::string& input) {
  SafeTensorsWriter w;
  w.set_metadata("config", tools::to_json(tools::TrainConfig{}).dump());
  w.set_metadata("input", input);
  w.write(dir.file("c.safetensors"));
  return dir.file("c.safetensors");
}

}  // namespace

TEST_CASE("a checkpoint's model input is checked before it is used") {
  TempDir dir;
  json in = good_input();
  in["h"] = 4294967324ull;  // int() made this 28
  REQUIRE_THROWS_WITH(
      tools::load_trained(write_checkpoint(dir, in.dump()), {}),
      Catch::Contains("c.safetensors") && Catch::Contains("'h'") && Catch::Contains("[1, 65536]"));
  in = good_input();
  in["source"] = {28, -1, 1};
  REQUIRE_THROWS_WITH(tools::load_trained(write_checkpoint(dir, in.dump()), {}),
                      Catch::Contains("'source'"));
  in = good_input();
  in["class_names"] = {"a"};  // predict indexed class_names[1] out of bounds
  REQUIRE_THROWS_WITH(tools::load_trained(write_checkpoint(dir, in.dump()), {}),
                      Catch::Contains("1 class names for 2 classes"));
  REQUIRE_THROWS_WITH(
      tools::load_trained(
          write_checkpoint(dir, std::string(100000, '[') + std::string(100000, ']')), {}),
      Catch::Contains("metadata 'input'") && Catch::Contains("nested deeper"));
}
