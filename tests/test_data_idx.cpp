// IDX reader tests: files are written into a fresh temp directory, raw and gzip, good and broken.
#include <zlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/idx.h"
#include "kernels/error.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using osprey::data::Dataset;
using osprey::data::load_idx_dataset;
using osprey::data::read_idx;

namespace {

using osprey::tests::TempDir;

using Bytes = std::vector<uint8_t>;

void put32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

Bytes image_file(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels,
                 uint32_t magic = 0x00000803) {
  Bytes b;
  put32(b, magic);
  put32(b, n);
  put32(b, rows);
  put32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes label_file(uint32_t n, const Bytes& labels, uint32_t magic = 0x00000801) {
  Bytes b;
  put32(b, magic);
  put32(b, n);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void write_raw(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  REQUIRE(f.good());
}

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), unsigned(b.size())) == int(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// 5 images of 3x4 with distinct pixel values, labels 0..3 (so 4 classes).
struct Sample {
  uint32_t n = 5, rows = 3, cols = 4;
  Bytes pixels, labels{2, 0, 3, 1, 3};
  Sample() {
    for (uint32_t i = 0; i < n * rows * cols; ++i) pixels.push_back(uint8_t(i * 7 + 1));
  }
};

void check_sample(const Dataset& ds, const Sample& s) {
  CHECK(ds.n == int(s.n));
  CHECK(ds.h == int(s.rows));
  CHECK(ds.w == int(s.cols));
  CHECK(ds.c == 1);
  CHECK(ds.pixels == s.pixels);
  CHECK(ds.labels == std::vector<int64_t>(s.labels.begin(), s.labels.end()));
  CHECK(ds.num_classes == 4);
  CHECK(ds.class_names == std::vector<std::string>{"0", "1", "2", "3"});
}

}  // namespace

TEST_CASE("read_idx round-trips raw and gzip files", "[data][idx]") {
  TempDir dir;
  Sample s;
  write_raw(dir.file("img"), image_file(s.n, s.rows, s.cols, s.pixels));
  write_raw(dir.file("lbl"), label_file(s.n, s.labels));
  // Gzip is detected from content, so a misleading name must not matter.
  write_gz(dir.file("img.raw"), image_file(s.n, s.rows, s.cols, s.pixels));
  write_gz(dir.file("lbl.gz"), label_file(s.n, s.labels));
  check_sample(read_idx(dir.file("img"), dir.file("lbl")), s);
  check_sample(read_idx(dir.file("img.raw"), dir.file("lbl.gz")), s);
  check_sample(read_idx(dir.file("img"), dir.file("lbl.gz")), s);
}

TEST_CASE("read_idx rejects malformed files with a message naming the file", "[data][idx]") {
  TempDir dir;
  Sample s;
  const std::string img = dir.file("images"), lbl = dir.file("labels");
  write_raw(lbl, label_file(s.n, s.labels));
  using Catch::Contains;

  SECTION("truncated pixel data, raw and gzip") {
    Bytes short_pixels(s.pixels.begin(), s.pixels.end() - 5);
    write_raw(img, image_file(s.n, s.rows, s.cols, short_pixels));
    REQUIRE_THROWS_AS(read_idx(img, lbl), osprey::Error);
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("truncated") &&
                                                Contains("expected 60 bytes of pixel data") &&
                                                Contains("after offset 16, got 55"));
    write_gz(img, image_file(s.n, s.rows, s.cols, short_pixels));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("got 55"));
  }
  SECTION("damaged gzip containers") {
    const Bytes whole = image_file(s.n, s.rows, s.cols, s.pixels);
    write_gz(img, whole);
    const Bytes gz = read_bytes(img);
    // Cut inside the deflate data: a truncation, flagged as a cut-short stream.
    write_raw(img, Bytes(gz.begin(), gz.begin() + 30));
    REQUIRE_THROWS_WITH(read_idx(img, lbl),
                        Contains(img) && Contains("gzip stream itself is cut short"));
    // All data present but the CRC/length trailer missing: the data cannot be trusted.
    write_raw(img, Bytes(gz.begin(), gz.end() - 8));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("trailer is missing"));
    // A flipped CRC bit is caught by inflate.
    Bytes bad_crc = gz;
    bad_crc[gz.size() - 8] ^= 1;
    write_raw(img, bad_crc);
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("corrupt gzip data"));
    // Garbage after the gzip stream (gzread would silently ignore it).
    Bytes garbage = gz;
    garbage.push_back('x');
    garbage.push_back('y');
    write_raw(img, garbage);
    REQUIRE_THROWS_WITH(read_idx(img, lbl),
                        Contains(img) && Contains("after the end of the gzip stream"));
    // Concatenated members are valid gzip and read as one stream.
    write_gz(img, Bytes(whole.begin(), whole.begin() + 20));
    Bytes two = read_bytes(img);
    write_gz(img, Bytes(whole.begin() + 20, whole.end()));
    const Bytes second = read_bytes(img);
    two.insert(two.end(), second.begin(), second.end());
    write_raw(img, two);
    check_sample(read_idx(img, lbl), s);
  }
  SECTION("truncated header") {
    Bytes b = image_file(s.n, s.rows, s.cols, {});
    b.resize(10);
    write_raw(img, b);
    REQUIRE_THROWS_WITH(read_idx(img, lbl),
                        Contains(img) && Contains("truncated header: expected 16 bytes, got 10"));
    write_raw(img, Bytes{0, 0});
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("got 2"));
  }
  SECTION("wrong magic") {
    write_raw(img, image_file(s.n, s.rows, s.cols, s.pixels, 0x00000801));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("bad magic 0x00000801") &&
                                                Contains("expected 0x00000803"));
    // Swapped arguments: the labels file is checked against the image magic.
    write_raw(img, image_file(s.n, s.rows, s.cols, s.pixels));
    REQUIRE_THROWS_WITH(read_idx(lbl, img), Contains(lbl) && Contains("bad magic"));
  }
  SECTION("zero or absurd dimensions") {
    write_raw(img, image_file(s.n, 0, s.cols, {}));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("bad rows 0 at offset 8"));
    write_raw(img, image_file(s.n, s.rows, 1u << 20, {}));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("bad cols"));
    // A header claiming far more data than exists fails as truncated, without a huge allocation.
    write_raw(img, image_file(2000000000u, 65536, 65536, s.pixels));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains("truncated"));
  }
  SECTION("label count differs from image count") {
    write_raw(img, image_file(s.n, s.rows, s.cols, s.pixels));
    write_raw(lbl, label_file(s.n - 1, Bytes(s.labels.begin(), s.labels.end() - 1)));
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(img) && Contains(lbl) &&
                                                Contains("has 5 images") &&
                                                Contains("has 4 labels"));
  }
  SECTION("trailing bytes") {
    Bytes b = image_file(s.n, s.rows, s.cols, s.pixels);
    b.push_back(0);
    b.push_back(0);
    write_raw(img, b);
    REQUIRE_THROWS_WITH(read_idx(img, lbl),
                        Contains(img) && Contains("2 unexpected trailing byte(s) after offset 76"));
    write_raw(img, image_file(s.n, s.rows, s.cols, s.pixels));
    Bytes l = label_file(s.n, s.labels);
    l.push_back(9);
    write_gz(lbl, l);
    REQUIRE_THROWS_WITH(read_idx(img, lbl), Contains(lbl) && Contains("trailing"));
  }
  SECTION("missing file") {
    write_raw(img, image_file(s.n, s.rows, s.cols, s.pixels));
    REQUIRE_THROWS_WITH(read_idx(img, dir.file("nope")),
                        Contains(dir.file("nope")) && Contains("cannot open"));
  }
}

TEST_CASE("load_idx_dataset finds raw or gzip files and names the split", "[data][idx]") {
  TempDir dir;
  Sample s;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), image_file(s.n, s.rows, s.cols, s.pixels));
  write_raw(dir.file("train-labels-idx1-ubyte"), label_file(s.n, s.labels));
  Dataset ds = load_idx_dataset(dir.path.string(), true, "tiny");
  check_sample(ds, s);
  CHECK(ds.name == "tiny");
  // Fashion class names only apply to 10-class data.
  CHECK(load_idx_dataset(dir.path.string(), true, "fashion-mnist").class_names[0] == "0");
  CHECK(load_idx_dataset(dir.path.string() + "/", true).name == dir.path.filename().string());

  REQUIRE_THROWS_WITH(load_idx_dataset(dir.path.string(), false),
                      Catch::Contains(dir.path.string()) &&
                          Catch::Contains("t10k-images-idx3-ubyte") &&
                          Catch::Contains("t10k-labels-idx1-ubyte"));
  const std::string missing = dir.file("no-such-dir");
  REQUIRE_THROWS_WITH(load_idx_dataset(missing, true),
                      Catch::Contains(missing) && Catch::Contains("does not exist") &&
                          Catch::Contains("train-images-idx3-ubyte") &&
                          Catch::Contains("train-labels-idx1-ubyte"));

  Bytes ten_labels{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  Bytes ten_pixels(10 * 2 * 2, 7);
  write_raw(dir.file("t10k-images-idx3-ubyte"), image_file(10, 2, 2, ten_pixels));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), label_file(10, ten_labels));
  Dataset f = load_idx_dataset(dir.path.string(), false, "Fashion-MNIST");
  CHECK(f.num_classes == 10);
  CHECK(f.class_names == osprey::data::fashion_mnist_class_names());
  CHECK(f.class_names[9] == "Ankle boot");
  Dataset m = load_idx_dataset(dir.path.string(), false, "mnist");
  CHECK(m.class_names[9] == "9");
}

TEST_CASE("Debian's Fashion-MNIST loads with the expected shapes", "[data][idx][fashion]") {
  const std::string dir = osprey::data::kDefaultFashionMnistDir;
  if (!fs::is_directory(dir)) {
    WARN("skipped: " << dir << " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  Dataset train = load_idx_dataset(dir, true, "fashion-mnist");
  Dataset test = load_idx_dataset(dir, false, "fashion-mnist");
  for (const Dataset* ds : {&train, &test}) {
    CHECK(ds->h == 28);
    CHECK(ds->w == 28);
    CHECK(ds->c == 1);
    CHECK(ds->num_classes == 10);
    CHECK(ds->class_names == osprey::data::fashion_mnist_class_names());
    CHECK(ds->pixels.size() == size_t(ds->n) * 28 * 28);
  }
  CHECK(train.n == 60000);
  CHECK(test.n == 10000);
  // The default name comes from the directory, which also selects the class names.
  CHECK(load_idx_dataset(dir, false).class_names[0] == "T-shirt/top");
  // Fashion-MNIST is balanced: 6000 training images per class.
  std::vector<int> counts(10, 0);
  for (int64_t l : train.labels) ++counts[size_t(l)];
  CHECK(counts == std::vector<int>(10, 6000));
}
