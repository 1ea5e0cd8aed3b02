// Hostile data files: control bytes from a file never reach a message raw, and nesting deep
// enough to overflow the stack is refused.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "data/augment.h"
#include "data/cifar10.h"
#include "data/tmnist.h"
#include "kernels/error.h"
#include "tests/test_support.h"

using namespace osprey;
using osprey::tests::TempDir;

namespace {

// The message of the Error fn throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::string tmnist_header() {
  std::string h = "names,labels";
  for (int k = 1; k <= 784; ++k) h += "," + std::to_string(k);
  return h;
}

std::string tmnist_row(const std::string& label, const std::string& pixel0 = "0") {
  std::string r = "Font," + label + "," + pixel0;
  for (int k = 1; k < 784; ++k) r += ",0";
  return r;
}

}  // namespace

TEST_CASE("TMNIST: escape sequences in fields are escaped in messages", "[data][tmnist]") {
  TempDir tmp;
  const std::string osc = "\x1b]0;pwned\x07\x1b[2J";  // set the title, clear the screen
  const std::string csv = tmp.file("t.csv");
  std::ofstream(csv, std::ios::binary) << tmnist_header() << "\n" << tmnist_row(osc) << "\n";
  std::string msg = error_of([&] { data::load_tmnist(csv); });
  REQUIRE(msg.find("t.csv") != std::string::npos);
  REQUIRE(msg.find("label '\\x1b]0;pwned\\x07\\x1b[2J'") != std::string::npos);
  REQUIRE_FALSE(has_control(msg));

  std::ofstream(csv, std::ios::binary) << tmnist_header() << "\n" << tmnist_row("A", osc) << "\n";
  msg = error_of([&] { data::load_tmnist(csv); });
  REQUIRE(msg.find("pixel") != std::string::npos);
  REQUIRE_FALSE(has_control(msg));

  std::ofstream(csv, std::ios::binary) << "names," << osc << "\n";
  msg = error_of([&] { data::load_tmnist(csv); });
  REQUIRE(msg.find("bad header") != std::string::npos);
  REQUIRE_FALSE(has_control(msg));
}

TEST_CASE("file names with control bytes are escaped in reader messages", "[data]") {
  TempDir tmp;
  const std::string name = tmp.file("evil\x1b[2J.bin");
  std::ofstream(name, std::ios::binary) << "short";
  data::Dataset ds;
  std::string msg = error_of([&] { data::read_cifar10_batch(name, ds); });
  REQUIRE(msg.find("evil\\x1b[2J.bin") != std::string::npos);
  REQUIRE_FALSE(has_control(msg));
}

TEST_CASE("augmentation JSON nested 100000 levels is refused, not a stack overflow",
          "[data][augment]") {
  TempDir tmp;
  const std::string deep =
      "[{\"type\": \"hflip\", \"p\": " + std::string(100000, '[') + std::string(100000, ']') + "}]";
  std::ofstream(tmp.file("deep.json")) << deep;
  REQUIRE_THROWS_WITH(data::AugmentPipeline::from_json_file(tmp.file("deep.json")),
                      Catch::Contains("deep.json") && Catch::Contains("nested deeper than 64"));
  // A value built without the text check (nlohmann's parser itself is iterative): the error
  // message used to dump() it recursively.
  const nlohmann::json j = nlohmann::json::parse(deep);
  REQUIRE_THROWS_WITH(data::AugmentPipeline::from_json(j), Catch::Contains("nested deeper"));
}
