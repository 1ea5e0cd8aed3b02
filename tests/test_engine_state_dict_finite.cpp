// Loading a state_dict refuses NaN / infinite weights, naming the tensor and the first bad
// index, and leaves the model untouched.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "engine/param_store.h"
#include "engine/state_dict.h"
#include "tests/test_support.h"

using namespace osprey;
using osprey::tests::TempDir;

TEST_CASE("non-finite weights are refused when a state_dict is loaded") {
  TempDir dir;
  ParamStore store;
  store.add("fc.weight", {2, 3});
  store.add("fc.bias", {2});
  store.add_buffer("bn.running_var", {2});
  store.finalize();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> w = {1, 2, 3, 4, 5, 6}, b = {0.5f, -0.5f}, v = {1, 1};

  auto write = [&](const std::string& name) {
    SafeTensorsWriter sw;
    sw.add_f32("fc.weight", {2, 3}, w.data());
    sw.add_f32("fc.bias", {2}, b.data());
    sw.add_f32("bn.running_var", {2}, v.data());
    sw.write(dir.file(name));
    return SafeTensorsFile::read(dir.file(name));
  };
  REQUIRE_NOTHROW(load_torch_state_dict(store, write("good.safetensors")));
  const std::vector<float> before = store.flat_data().to_vector();

  w[4] = nan;
  REQUIRE_THROWS_WITH(load_torch_state_dict(store, write("nan.safetensors")),
                      Catch::Contains("nan.safetensors") && Catch::Contains("'fc.weight'") &&
                          Catch::Contains("index 4"));
  w[4] = 5;
  v[1] = inf;  // a buffer: checked before any parameter is written
  REQUIRE_THROWS_WITH(load_torch_state_dict(store, write("inf.safetensors")),
                      Catch::Contains("'bn.running_var'") && Catch::Contains("index 1"));
  REQUIRE_THROWS_WITH(load_pretrained_state_dict(store, write("inf2.safetensors"), {}),
                      Catch::Contains("'bn.running_var'"));
  REQUIRE(store.flat_data().to_vector() == before);
}
