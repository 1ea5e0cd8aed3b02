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

namespace {

// A safetensors file with the given JSON header and `data_bytes` zero bytes of data, made by
// hand so that the header can say anything.
std::string hand_made(const std::string& dir, const std::string& name, const std::string& header,
                      size_t data_bytes = 0) {
  std::string path = dir + "/" + name;
  uint64_t len = header.size();
  std::string bytes(reinterpret_cast<const char*>(&len), 8);
  bytes += header;
  bytes.append(data_bytes, '\0');
  write_all(path, bytes);
  return path;
}

}  // namespace

TEST_CASE("hostile safetensors headers fail with one message naming the file and tensor") {
  TempDir dir;
  const std::string d = dir.path.string();
  SECTION("element count past int64 (was signed overflow)") {
    std::string p = hand_made(
        d, "big.safetensors",
        R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 0]}})");
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(p), Catch::Contains("big.safetensors") &&
                                                      Catch::Contains("'w'") &&
                                                      Catch::Contains("overflows"));
  }
  SECTION("byte count that wraps to the data size (was accepted, then max_size())") {
    std::string p = hand_made(
        d, "wrap.safetensors",
        R"({"w": {"dtype": "F32", "shape": [2147483648, 2147483648], "data_offsets": [0, 0]}})");
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(p), Catch::Contains("wrap.safetensors") &&
                                                      Catch::Contains("'w'") &&
                                                      Catch::Contains("overflows"));
  }
  SECTION("negative, fractional and huge dimensions") {
    for (const char* shape : {"[-1, 4]", "[1.5]", "[18446744073709551615]", "[\"2\"]", "3"}) {
      std::string p = hand_made(d, "dims.safetensors",
                                std::string(R"({"w": {"dtype": "U8", "shape": )") + shape +
                                    R"(, "data_offsets": [0, 0]}})");
      REQUIRE_THROWS_WITH(SafeTensorsFile::read(p),
                          Catch::Contains("dims.safetensors") && Catch::Contains("'w'"));
    }
  }
  SECTION("offsets past the data, reversed or negative") {
    for (const char* offs : {"[0, 17]", "[8, 4]", "[-4, 4]", "[18446744073709551612, 4]"}) {
      std::string p = hand_made(
          d, "offs.safetensors",
          std::string(R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": )") + offs + "}}", 16);
      REQUIRE_THROWS_WITH(SafeTensorsFile::read(p),
                          Catch::Contains("offs.safetensors") && Catch::Contains("'w'"));
    }
  }
  SECTION("a header nested 100000 levels deep") {
    std::string p = hand_made(
        d, "deep.safetensors",
        R"({"__metadata__": {"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}}");
    REQUIRE_THROWS_WITH(SafeTensorsFile::read(p),
                        Catch::Contains("deep.safetensors") && Catch::Contains("nested deeper"));
  }
  SECTION("control bytes in names are escaped in messages") {
    std::string p =
        hand_made(d, "esc.safetensors",
                  R"({"\u001b]0;x\u0007": {"dtype": "Q9", "shape": [], "data_offsets": [0, 0]}})");
    try {
      SafeTensorsFile::read(p);
      FAIL("no error");
    } catch (const Error& e) {
      std::string what = e.what();
      REQUIRE(what.find('\x1b') == std::string::npos);
      REQUIRE(what.find("\\x1b]0;x\\x07") != std::string::npos);
    }
  }
}

TEST_CASE("metadata accessors parse strictly and name the file and key") {
  TempDir dir;
  SafeTensorsWriter w;
  w.set_metadata("classes", "10");
  w.set_metadata("bad", "ten");
  w.set_metadata("width", "0.5");
  w.set_metadata("rng", "18446744073709551615");
  w.write(dir.file("m.safetensors"));
  SafeTensorsFile f = SafeTensorsFile::read(dir.file("m.safetensors"));
  REQUIRE(f.metadata_int("classes", 1, 1000) == 10);
  REQUIRE(f.metadata_double("width", 0, 1) == 0.5);
  REQUIRE(f.metadata_uint64("rng") == UINT64_MAX);
  REQUIRE(f.metadata_string("bad") == "ten");
  REQUIRE_THROWS_WITH(f.metadata_int("bad", 1, 1000), Catch::Contains("m.safetensors") &&
                                                          Catch::Contains("'bad'") &&
                                                          Catch::Contains("'ten'"));
  REQUIRE_THROWS_WITH(f.metadata_int("classes", 1, 5), Catch::Contains("[1, 5]"));
  REQUIRE_THROWS_WITH(f.metadata_double("missing", 0, 1),
                      Catch::Contains("m.safetensors") && Catch::Contains("'missing'"));
}

TEST_CASE("an atomic write never writes through a link planted at its temporary name") {
  osprey::tests::TempDir dir;
  const std::string victim = dir.file("victim.txt");
  write_all(victim, "precious");
  const std::string tmp = dir.file(".out.safetensors.tmp." + std::to_string(::getpid()));
  REQUIRE(::symlink(victim.c_str(), tmp.c_str()) == 0);
  osprey::write_file_atomic(dir.file("out.safetensors"), "new bytes");
  CHECK(read_all(victim) == "precious");
  CHECK(read_all(dir.file("out.safetensors")) == "new bytes");
  CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(tmp)));
}
