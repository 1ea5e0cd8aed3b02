// safetensors: round trip, metadata, and clear errors on damaged files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/safetensors.h"
#include "tests/test_support.h"

using namespace osprey;
namespace fs = std::filesystem;
using osprey::tests::TempDir;

namespace {

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TEST_CASE("safetensors round trip keeps values, shapes and metadata") {
  TempDir dir;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  std::vector<int64_t> b = {1, -5, 1LL << 40};
  SafeTensorsWriter w;
  w.add_f32("layer.weight", {2, 3}, a.data());
  w.add_i64("layer.num_batches_tracked", {3}, b.data());
  w.set_metadata("epoch", "4");
  w.write(dir.file("x.safetensors"));
  SafeTensorsFile f = SafeTensorsFile::read(dir.file("x.safetensors"));
  REQUIRE(f.names().size() == 2);
  REQUIRE(f.shape("layer.weight") == Shape{2, 3});
  REQUIRE(f.floats("layer.weight") == a);
  REQUIRE(f.ints("layer.num_batches_tracked") == b);
  REQUIRE(f.metadata().at("epoch") == "4");
  // header length is a multiple of 8, as the format requires
  std::string bytes = read_all(dir.file("x.safetensors"));
  uint64_t len;
  std::memcpy(&len, bytes.data(), 8);
  REQUIRE(len % 8 == 0);
  // no temporary file left behind
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  REQUIRE(files == 1);
}

TEST_CASE("damaged safetensors files are refused with a message naming the file") {
  TempDir dir;
  std::vector<float> a(100, 1.0f);
  SafeTensorsWriter w;
  w.add_f32("w", {100}, a.data());
  w.write(dir.file("good.safetensors"));
  std::string good = read_all(dir.file("good.safetensors"));

  SECTION("truncated data") {
    write_all(dir.file("t.safetensors"), good.substr(0, good.size() - 10));
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(dir.file("t.safetensors")),
                        Catch::Contains("t.safetensors") && Catch::Contains("'w'"));
  }
  SECTION("shorter than the length prefix") {
    write_all(dir.file("s.safetensors"), "abc");
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(dir.file("s.safetensors")),
                        Catch::Contains("s.safetensors") && Catch::Contains("truncated"));
  }
  SECTION("header length beyond the file") {
    std::string bad = good;
    uint64_t huge = 1ull << 40;
    std::memcpy(bad.data(), &huge, 8);
    write_all(dir.file("h.safetensors"), bad);
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(dir.file("h.safetensors")),
                        Catch::Contains("h.safetensors") && Catch::Contains("corrupt"));
  }
  SECTION("header is not JSON") {
    std::string bad = good;
    bad[8] = '#';
    write_all(dir.file("j.safetensors"), bad);
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(dir.file("j.safetensors")),
                        Catch::Contains("j.safetensors") && Catch::Contains("header"));
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(dir.file("nope.safetensors")),
                        Catch::Contains("nope.safetensors"));
  }
  SECTION("missing tensor") {
    SafeTensorsFile f = SafeTensorsFile::read(dir.file("good.safetensors"));
    REQUIRE_THROWS_WITH(f.floats("v"), Catch::Contains("no tensor 'v'"));
  }
}
