// Reading PyTorch .pth state_dicts (engine/pth.h) against the fixtures of
// tests/golden/make_pth.py: each readable file must give exactly the tensors of its
// .expected.safetensors, and each hostile one must be refused, naming the file and the cause.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/pth.h"
#include "engine/torch_pickle.h"
#include "tests/test_support.h"

using osprey::read_pth;
using osprey::read_tensor_file;
using osprey::SafeTensorsFile;
using osprey::tests::TempDir;

namespace {

std::string fixture(const std::string& name) {
  return std::string(OSPREY_GOLDEN_DIR) + "/pth/" + name;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The first entry of a zip written by torch.save, its data.pkl: stored uncompressed, with its
// size in the data descriptor (signature PK\7\8) after the data, as PyTorch's writer does.
std::string first_entry(const std::string& zip) {
  auto u16 = [&](size_t at) {
    return size_t(uint8_t(zip[at])) | size_t(uint8_t(zip[at + 1])) << 8;
  };
  REQUIRE(zip.compare(0, 4, "PK\x03\x04") == 0);
  const size_t name = u16(26), begin = 30 + name + u16(28);
  REQUIRE(zip.substr(30, name).find("data.pkl") != std::string::npos);
  const size_t end = zip.find("PK\x07\x08", begin);
  REQUIRE(end != std::string::npos);
  return zip.substr(begin, end - begin);
}

// Same names, dtypes, shapes and bytes.
void require_same(const SafeTensorsFile& got, const SafeTensorsFile& want) {
  REQUIRE(got.names() == want.names());
  for (const std::string& name : want.names()) {
    INFO("tensor " << name);
    CHECK(got.entry(name).dtype == want.entry(name).dtype);
    CHECK(got.shape(name) == want.shape(name));
    CHECK(got.entry(name).bytes == want.entry(name).bytes);
  }
}

}  // namespace

TEST_CASE("pth: state_dicts read as their expected safetensors", "[pth]") {
  const std::string name = GENERATE("plain", "checkpoint", "ddp", "views", "dtypes");
  INFO("fixture " << name);
  const SafeTensorsFile got = read_tensor_file(fixture(name + ".pth"));
  require_same(got, SafeTensorsFile::read(fixture(name + ".expected.safetensors")));
}

TEST_CASE("pth: what the fixtures hold, spelt out", "[pth]") {
  SECTION("a checkpoint gives its state_dict, not its optimizer") {
    const SafeTensorsFile f = read_pth(fixture("checkpoint.pth"));
    CHECK(f.names() == std::vector<std::string>{"0.bias", "0.weight", "1.bias",
                                                "1.num_batches_tracked", "1.running_mean",
                                                "1.running_var", "1.weight", "3.bias", "3.weight"});
    CHECK(f.ints("1.num_batches_tracked") == std::vector<int64_t>{2});
    CHECK(f.shape("1.num_batches_tracked").empty());
  }
  SECTION("DDP and torch.compile prefixes are dropped") {
    const SafeTensorsFile f = read_pth(fixture("ddp.pth"));
    CHECK(f.has("0.weight"));
    CHECK(f.has("extra"));
    CHECK_FALSE(f.has("module.0.weight"));
  }
  SECTION("views are copied out contiguous") {
    const SafeTensorsFile f = read_pth(fixture("views.pth"));
    CHECK(f.shape("transposed") == osprey::Shape{6, 4});
    CHECK(f.floats("transposed")[1] == 6.0f);  // base is arange(24) as 4 x 6
    CHECK(f.floats("offset") == std::vector<float>{5, 6, 7, 8, 9, 10});
    CHECK(f.floats("column") == std::vector<float>{2, 8, 14, 20});
    CHECK(f.floats("block") == std::vector<float>{8, 9, 10, 14, 15, 16});
  }
  SECTION("dtypes keep their safetensors names") {
    const SafeTensorsFile f = read_pth(fixture("dtypes.pth"));
    CHECK(f.entry("f16").dtype == "F16");
    CHECK(f.entry("bf16").dtype == "BF16");
    CHECK(f.entry("f64").dtype == "F64");
    CHECK(f.entry("u8").dtype == "U8");
    CHECK(f.floats("f16") == std::vector<float>{1.5f, -2.0f, 65504.0f});
    CHECK(f.floats("bf16")[1] == -3.25f);
    CHECK(f.ints("i64") == std::vector<int64_t>{-(int64_t(1) << 40), 7});
    CHECK(f.ints("i32") == std::vector<int64_t>{-5, 6, 7});
  }
  SECTION("a simple_cnn checkpoint under 'model'") {
    const SafeTensorsFile f = read_pth(fixture("simple_cnn.pth"));
    CHECK(f.shape("fc1.weight") == osprey::Shape{128, 3136});
    CHECK(f.names().size() == 8);
  }
}

TEST_CASE("pth: a safetensors file still reads as safetensors", "[pth]") {
  const std::string path = fixture("plain.expected.safetensors");
  require_same(read_tensor_file(path), SafeTensorsFile::read(path));
}

TEST_CASE("pth: hostile files are refused and nothing of them runs", "[pth]") {
  SECTION("a __reduce__ calling os.system") {
    const std::string marker = "/tmp/osprey_pth_reduce_ran";  // tests/golden/make_pth.py
    ::unlink(marker.c_str());
    REQUIRE_THROWS_WITH(read_pth(fixture("reduce_system.pth")),
                        Catch::Contains("reduce_system.pth': pickle global 'posix.system' is not "
                                        "allowed (a .pth may only hold tensors)"));
    CHECK_FALSE(std::filesystem::exists(marker));
  }
  SECTION("an unknown global") {
    REQUIRE_THROWS_WITH(read_pth(fixture("unknown_global.pth")),
                        Catch::Contains("unknown_global.pth") &&
                            Catch::Contains("pickle global 'datetime.date' is not allowed"));
  }
  SECTION("a truncated pickle") {
    REQUIRE_THROWS_WITH(read_pth(fixture("truncated_pickle.pth")),
                        Catch::Contains("truncated_pickle.pth") && Catch::Contains("truncated"));
  }
  SECTION("a storage offset beyond the storage") {
    REQUIRE_THROWS_WITH(read_pth(fixture("offset_beyond.pth")),
                        Catch::Contains("offset_beyond.pth") && Catch::Contains("offset 99") &&
                            Catch::Contains("storage of 4 elements"));
  }
  SECTION("a storage entry shorter than the storage") {
    REQUIRE_THROWS_WITH(read_pth(fixture("short_storage.pth")),
                        Catch::Contains("short_storage.pth") && Catch::Contains("needs 16 bytes") &&
                            Catch::Contains("has 8"));
  }
}

TEST_CASE("pth: a truncated or corrupt zip is refused", "[pth]") {
  TempDir dir("osprey_pth");
  const std::string good = read_all(fixture("plain.pth"));
  SECTION("cut short") {
    write_all(dir.file("cut.pth"), good.substr(0, good.size() * 2 / 3));
    REQUIRE_THROWS_WITH(read_tensor_file(dir.file("cut.pth")),
                        Catch::Contains("cut.pth") && Catch::Contains("not a readable zip"));
  }
  SECTION("a flipped byte in a stored entry fails its CRC") {
    std::string bad = good;
    const size_t at = bad.find("\x80\x02", bad.find("data.pkl")) + 20;  // inside the pickle
    bad[at] = char(bad[at] ^ 0x55);
    write_all(dir.file("flip.pth"), bad);
    REQUIRE_THROWS_WITH(read_tensor_file(dir.file("flip.pth")), Catch::Contains("flip.pth"));
  }
  SECTION("a stored entry claiming more bytes than the archive has is refused unallocated") {
    // The central directory's uncompressed size of plain/data/0 (offset 24 of its record) made
    // 2.9 GB: libzip's consistency check passes it; the fuzzer found the allocation.
    std::string bad = good;
    const size_t record = bad.rfind("PK\x01\x02", bad.rfind("plain/data/0"));
    REQUIRE(record != std::string::npos);
    const char huge[4] = {0, 0, 0, char(0xAF)};
    bad.replace(record + 24, 4, huge, 4);
    write_all(dir.file("huge.pth"), bad);
    REQUIRE_THROWS_WITH(read_tensor_file(dir.file("huge.pth")),
                        Catch::Contains("huge.pth") && Catch::Contains("plain/data/0") &&
                            Catch::Contains("more than the archive holds"));
  }
}

TEST_CASE("pth: every cut and every flipped byte of a pickle is an error, never a crash", "[pth]") {
  const std::string pickle = first_entry(read_all(fixture("checkpoint.pth")));
  REQUIRE(osprey::TorchPickle("'p'", pickle).root().kind == osprey::PickleValue::Kind::dict);
  for (size_t n = 0; n < pickle.size(); ++n) {
    INFO("first " << n << " bytes");
    REQUIRE_THROWS_AS(osprey::TorchPickle("'p'", pickle.substr(0, n)), osprey::Error);
  }
  for (size_t at = 0; at < pickle.size(); ++at)
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      std::string bad = pickle;
      bad[at] = char(bad[at] ^ flip);
      try {
        osprey::TorchPickle p("'p'", bad);
      } catch (const osprey::Error&) {
      }
    }
}

TEST_CASE("pth: the pickle reader refuses what a state_dict never holds", "[pth]") {
  auto refusal = [](const std::string& pickle) {
    try {
      osprey::TorchPickle p("'p.pth'", pickle);
    } catch (const osprey::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  using Catch::Contains;
  CHECK_THAT(refusal("\x80\x04\x95"), Contains("'p.pth': pickle opcode 0x95"));
  CHECK_THAT(refusal("cbuiltins\neval\n."), Contains("global 'builtins.eval' is not allowed"));
  CHECK_THAT(refusal("ctorch\nFloatStorage\n)R."), Contains("only names a storage type"));
  CHECK_THAT(refusal("]}b."), Contains("BUILD of a list"));
  CHECK_THAT(refusal("h\x05."), Contains("memo entry 5 was never stored"));
  CHECK_THAT(refusal(std::string(300, '(') + "."), Contains("deeper than 256 MARKs"));
  CHECK_THAT(refusal("K\x01K\x02."), Contains("STOP leaves 2 values"));
  CHECK_THAT(refusal("}."), Contains("accepted"));
}
