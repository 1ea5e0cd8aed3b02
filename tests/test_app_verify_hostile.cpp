// `osprey verify` on hostile references: metadata that is not a number, and input shapes whose
// zero dimension lets the others be anything, fail with the file and key named.
#include <catch2/catch.hpp>

#include "engine/safetensors.h"
#include "kernels/error.h"
#include "tests/test_support.h"
#include "tools/verify.h"

using namespace osprey;
using osprey::tests::TempDir;

namespace {

tools::VerifyOptions write_reference(const TempDir& dir, const Shape& input_shape,
                                     const std::map<std::string, std::string>& metadata) {
  SafeTensorsWriter ref;
  std::vector<float> zeros(size_t(shape_numel(input_shape)), 0.0f);
  ref.add_f32("input", input_shape, zeros.data());
  for (const auto& [k, v] : metadata) ref.set_metadata(k, v);
  ref.write(dir.file("r.ref.safetensors"));
  SafeTensorsWriter().write(dir.file("r.params.safetensors"));
  return tools::verify_options_from_prefix(dir.file("r"));
}

}  // namespace

TEST_CASE("verify refuses non-numeric reference metadata naming the file and key") {
  TempDir dir;
  // Used to fail with the bare message "stoi".
  auto opts = write_reference(dir, {1, 1, 28, 28}, {{"model", "simple_cnn"}, {"classes", "ten"}});
  REQUIRE_THROWS_WITH(tools::run_verify(opts), Catch::Contains("r.ref.safetensors") &&
                                                   Catch::Contains("'classes'") &&
                                                   Catch::Contains("'ten'"));
  opts = write_reference(dir, {1, 1, 28, 28}, {{"model", "simple_cnn"}, {"classes", "10abc"}});
  REQUIRE_THROWS_WITH(tools::run_verify(opts), Catch::Contains("'classes'"));
  opts =
      write_reference(dir, {1, 1, 28, 28}, {{"model", "simple_cnn"}, {"classes", "99999999999"}});
  REQUIRE_THROWS_WITH(tools::run_verify(opts), Catch::Contains("'classes'"));
  opts = write_reference(dir, {1, 1, 28, 28},
                         {{"model", "simple_cnn"}, {"classes", "10"}, {"width", "wide"}});
  REQUIRE_THROWS_WITH(tools::run_verify(opts),
                      Catch::Contains("r.ref.safetensors") && Catch::Contains("'width'"));
}

TEST_CASE("verify refuses reference inputs with zero or huge dimensions") {
  TempDir dir;
  auto opts = write_reference(dir, {1, 0, int64_t(1) << 33, 28},
                              {{"model", "simple_cnn"}, {"classes", "10"}});
  REQUIRE_THROWS_WITH(tools::run_verify(opts),
                      Catch::Contains("r.ref.safetensors") && Catch::Contains("[1, 65536]"));
}
