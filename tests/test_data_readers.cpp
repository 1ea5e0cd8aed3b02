// CIFAR-10 and TMNIST readers and split_holdout, on small files written into a temp directory.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "data/cifar10.h"
#include "data/loader.h"
#include "data/tmnist.h"
#include "kernels/error.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace osprey::data;
using Catch::Matchers::Contains;

namespace {

using osprey::tests::TempDir;

void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

// Record r of file f: label (f + r) % 10, plane ch pixel p = (p + 7 ch + 13 r + 29 f) % 256.
std::string cifar_records(int file, int count) {
  std::string b;
  for (int r = 0; r < count; ++r) {
    b += char((file + r) % 10);
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 1024; ++p) b += char((p + 7 * ch + 13 * r + 29 * file) % 256);
  }
  return b;
}

void write_cifar(const fs::path& dir) {
  fs::create_directories(dir);
  for (int f = 1; f <= 5; ++f)
    write((dir / ("data_batch_" + std::to_string(f) + ".bin")).string(), cifar_records(f, 2));
  write((dir / "test_batch.bin").string(), cifar_records(0, 3));
}

std::string tmnist_header() {
  std::string h = "names,labels";
  for (int k = 1; k <= 784; ++k) h += "," + std::to_string(k);
  return h;
}

// A row whose pixel k is (k + shift) % 256.
std::string tmnist_row(const std::string& font, const std::string& label, int shift) {
  std::string r = font + "," + label;
  for (int k = 0; k < 784; ++k) r += "," + std::to_string((k + shift) % 256);
  return r;
}

}  // namespace

TEST_CASE("CIFAR-10: records become NHWC 32x32x3 images", "[data][cifar10]") {
  TempDir tmp;
  write_cifar(tmp.path);
  const Dataset train = load_cifar10(tmp.path.string(), true);
  CHECK(train.name == "cifar10");
  CHECK((train.n == 10 && train.h == 32 && train.w == 32 && train.c == 3));
  CHECK(train.num_classes == 10);
  CHECK(train.class_names.front() == "airplane");
  CHECK(train.class_names.back() == "truck");
  // Sample 5 is record 1 of data_batch_3: label 4; pixel (y, x, ch) is plane ch at y * 32 + x.
  CHECK(train.labels[5] == 4);
  const uint8_t* img = train.pixels.data() + 5 * 3072;
  for (int p : {0, 33, 1023})
    for (int ch = 0; ch < 3; ++ch) CHECK(int(img[3 * p + ch]) == (p + 7 * ch + 13 + 29 * 3) % 256);
  const Dataset test = load_cifar10(tmp.path.string(), false);
  CHECK(test.n == 3);
  CHECK(test.labels == std::vector<int64_t>{0, 1, 2});

  // The folder the archive extracts into works too.
  TempDir outer;
  write_cifar(outer.path / "cifar-10-batches-bin");
  CHECK(load_cifar10(outer.path.string(), false).n == 3);
}

TEST_CASE("CIFAR-10: corrupt files name the file, record and offset", "[data][cifar10]") {
  TempDir tmp;
  write_cifar(tmp.path);
  write(tmp.file("data_batch_2.bin"), cifar_records(2, 2) + "12345");
  CHECK_THROWS_WITH(load_cifar10(tmp.path.string(), true),
                    Contains("data_batch_2.bin: size 6151 bytes is not a multiple of the "
                             "3073-byte record") &&
                        Contains("record 2 starting at offset 6146 is truncated to 5 bytes"));
  std::string bad = cifar_records(2, 2);
  bad[3073] = char(10);
  write(tmp.file("data_batch_2.bin"), bad);
  CHECK_THROWS_WITH(load_cifar10(tmp.path.string(), true),
                    Contains("data_batch_2.bin: record 1 (label byte at offset 3073) has label "
                             "10, expected 0..9"));
  write(tmp.file("data_batch_2.bin"), "");
  CHECK_THROWS_WITH(load_cifar10(tmp.path.string(), true), Contains("data_batch_2.bin: is empty"));
  fs::remove(tmp.path / "data_batch_3.bin");
  CHECK_THROWS_WITH(load_cifar10(tmp.path.string(), true), Contains("missing data_batch_3.bin"));
  CHECK_THROWS_WITH(load_cifar10(tmp.file("nope"), true), Contains("does not exist"));
}

TEST_CASE("TMNIST: classes are fixed by character code", "[data][tmnist]") {
  TempDir tmp;
  // A comma and a quote label must be quoted, as pandas writes them; CRLF line ends and a
  // trailing blank line are accepted.
  const std::string csv = tmnist_header() + "\r\n" + tmnist_row("Font-A", "A", 0) + "\r\n" +
                          tmnist_row("\"Font, B\"", "\",\"", 1) + "\r\n" +
                          tmnist_row("Font-C", "\"\"\"\"", 2) + "\r\n" +
                          tmnist_row("Font-D", "~", 300) + "\r\n\r\n";
  write(tmp.file("t.csv"), csv);
  const Dataset ds = load_tmnist(tmp.file("t.csv"));
  CHECK(ds.name == "tmnist");
  CHECK((ds.n == 4 && ds.h == 28 && ds.w == 28 && ds.c == 1));
  CHECK(ds.num_classes == 94);
  REQUIRE(ds.class_names.size() == 94);
  CHECK(ds.class_names[0] == "!");
  CHECK(ds.class_names[93] == "~");
  // 'A' = 65 - 33 = 32, ',' = 44 - 33 = 11, '"' = 34 - 33 = 1, '~' = 93.
  CHECK(ds.labels == std::vector<int64_t>{32, 11, 1, 93});
  CHECK(ds.class_names[32] == "A");
  for (int k : {0, 100, 783}) {
    CHECK(int(ds.pixels[size_t(k)]) == k % 256);
    CHECK(int(ds.pixels[size_t(3 * 784 + k)]) == (k + 300) % 256);
  }
}

TEST_CASE("TMNIST: malformed input names file and line", "[data][tmnist]") {
  TempDir tmp;
  const std::string path = tmp.file("t.csv");
  const std::string good = tmnist_row("F", "A", 0);
  auto err = [&](const std::string& csv, const std::string& want) {
    write(path, csv);
    INFO(want);
    CHECK_THROWS_WITH(load_tmnist(path), Contains(path) && Contains(want));
  };
  std::string header = tmnist_header();
  err("names,label" + header.substr(12) + "\n" + good + "\n",
      "line 1: bad header: column 2 is 'label', expected 'labels'");
  err(header.substr(0, header.size() - 4) + "\n" + good + "\n",
      "line 1: 785 columns, expected 786");
  err(header + "\n" + good + "\n" + good + ",7\n", "line 3: 787 columns, expected 786");
  err(header + "\n" + good.substr(0, good.rfind(',')) + "\n", "line 2: 785 columns");
  err(header + "\n" + tmnist_row("F", "AB", 0) + "\n", "line 2, column 2: label 'AB' is not");
  err(header + "\n" + tmnist_row("F", " ", 0) + "\n", "label ' ' is not one of the 94");
  std::string pix = good;
  pix.replace(pix.rfind(',') + 1, std::string::npos, "300");
  err(header + "\n" + good + "\n" + pix + "\n",
      "line 3, column 786 (pixel 784): value 300 is outside 0..255");
  pix = good;
  pix.replace(pix.rfind(',') + 1, std::string::npos, "1.5");
  err(header + "\n" + pix + "\n", "line 2, column 786 (pixel 784): '1.5' is not an integer");
  err(header + "\n" + tmnist_row("\"F", "A", 0) + "\n", "line 2, column 1: unterminated");
  err("", "is empty");
  err(header + "\n", "no data rows");
  CHECK_THROWS_WITH(load_tmnist(tmp.file("missing.csv")), Contains("cannot open"));
}

TEST_CASE("split_holdout is a seeded, disjoint, ordered split", "[data][split]") {
  Dataset ds;
  ds.name = "d";
  ds.n = 20;
  ds.h = ds.w = 1;
  ds.c = 1;
  ds.num_classes = 20;
  for (int i = 0; i < 20; ++i) {
    ds.pixels.push_back(uint8_t(i));
    ds.labels.push_back(i);
  }
  const auto [train, test] = split_holdout(ds, 0.25, 5);
  CHECK((train.n == 15 && test.n == 5));
  std::vector<int64_t> order;
  epoch_order(20, true, 5, 0, order);
  std::set<int64_t> want_test(order.begin(), order.begin() + 5);
  CHECK(std::set<int64_t>(test.labels.begin(), test.labels.end()) == want_test);
  CHECK(std::is_sorted(test.labels.begin(), test.labels.end()));
  CHECK(std::is_sorted(train.labels.begin(), train.labels.end()));
  std::set<int64_t> all(train.labels.begin(), train.labels.end());
  all.insert(test.labels.begin(), test.labels.end());
  CHECK(all.size() == 20);
  for (int i = 0; i < test.n; ++i) CHECK(int64_t(test.pixels[size_t(i)]) == test.labels[size_t(i)]);
  CHECK(split_holdout(ds, 0.25, 5).second.labels == test.labels);
  CHECK(split_holdout(ds, 0.25, 6).second.labels != test.labels);
  CHECK_THROWS_WITH(split_holdout(ds, 1.5, 0), Contains("outside [0, 1]"));
}
