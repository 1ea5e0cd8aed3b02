// Image decoding and image folders, on tiny PNG/JPEG files written with stb_image_write.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/image_folder.h"
#include "engine/error.h"
#include "tests/test_support.h"

// Static: the test binary's own copy, invisible to anything else linked in.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;
using namespace osprey::data;
using Catch::Matchers::Contains;

namespace {

using osprey::tests::TempDir;

// An h x w RGB image whose pixel (y, x) is (base + 10 y + x, 2 base, 200).
std::vector<uint8_t> rgb(int h, int w, int base) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(uint8_t(base + 10 * y + x));
      px.push_back(uint8_t(2 * base));
      px.push_back(200);
    }
  return px;
}

void write_png(const fs::path& path, int h, int w, int base) {
  fs::create_directories(path.parent_path());
  const std::vector<uint8_t> px = rgb(h, w, base);
  REQUIRE(stbi_write_png(path.string().c_str(), w, h, 3, px.data(), w * 3) != 0);
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  REQUIRE(f.good());
}

// Two classes, "cat" (2 images) and "dog" (1), of 3x4 PNGs, plus files to be ignored.
void write_folder(const fs::path& root) {
  write_png(root / "dog" / "a.png", 3, 4, 50);
  write_png(root / "cat" / "b.png", 3, 4, 20);
  write_png(root / "cat" / "a.png", 3, 4, 10);
  write_text(root / "cat" / ".DS_Store", "junk");
  write_text(root / "README.txt", "not a class");
}

}  // namespace

TEST_CASE("load_image decodes PNG and JPEG and converts channels", "[data][image]") {
  TempDir tmp;
  write_png(tmp.path / "x.png", 3, 4, 10);
  Image img = load_image((tmp.path / "x.png").string(), 3);
  CHECK((img.h == 3 && img.w == 4 && img.c == 3));
  CHECK(img.pixels == rgb(3, 4, 10));
  CHECK(load_image((tmp.path / "x.png").string(), 0).c == 3);  // the file's own
  // stb_image's gray: (77 R + 150 G + 29 B) >> 8; pixel (1, 2) = (22, 20, 200).
  img = load_image((tmp.path / "x.png").string(), 1);
  CHECK(img.c == 1);
  CHECK(int(img.pixels[6]) == (77 * 22 + 150 * 20 + 29 * 200) >> 8);

  const std::vector<uint8_t> px = rgb(8, 8, 0);
  const std::string jpg = (tmp.path / "y.jpg").string();
  REQUIRE(stbi_write_jpg(jpg.c_str(), 8, 8, 3, px.data(), 95) != 0);
  img = load_image(jpg, 3);
  CHECK((img.h == 8 && img.w == 8 && img.c == 3));
  CHECK(std::abs(int(img.pixels[0]) - 0) < 12);  // lossy, but close

  write_text(tmp.path / "note.png", "this is text, not an image");
  CHECK_THROWS_WITH(load_image((tmp.path / "note.png").string(), 3),
                    Contains("note.png: not a readable image"));
  CHECK_THROWS_WITH(load_image((tmp.path / "none.png").string(), 3),
                    Contains("none.png: cannot open"));
  const std::string upload = "GIF89a-truncated";
  CHECK_THROWS_WITH(decode_image(upload.data(), upload.size(), 3, "upload"),
                    Contains("image upload: not a readable image"));
}

TEST_CASE("resize_image uses the augmentation's bilinear rule", "[data][image]") {
  // A 1x2 gray image [0, 200] to 1x4: weights (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1).
  Image img{1, 2, 1, {0, 200}};
  Image r = resize_image(img, 1, 4);
  CHECK((r.h == 1 && r.w == 4 && r.c == 1));
  CHECK(r.pixels == std::vector<uint8_t>{0, 50, 150, 200});
}

TEST_CASE("image folder: classes are sorted subfolders", "[data][image_folder]") {
  TempDir tmp;
  write_folder(tmp.path / "pets");
  const Dataset ds = load_image_folder((tmp.path / "pets").string(), 3, 0, 0);
  CHECK(ds.name == "pets");
  CHECK((ds.n == 3 && ds.h == 3 && ds.w == 4 && ds.c == 3));
  CHECK(ds.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(ds.num_classes == 2);
  CHECK(ds.labels == std::vector<int64_t>{0, 0, 1});
  // Files in name order: cat/a.png (base 10), cat/b.png (20), dog/a.png (50).
  for (int i = 0; i < 3; ++i) {
    const std::vector<uint8_t> want = rgb(3, 4, i == 0 ? 10 : i == 1 ? 20 : 50);
    CHECK(std::equal(want.begin(), want.end(), ds.pixels.begin() + i * 36));
  }

  const Dataset gray = load_image_folder((tmp.path / "pets").string() + "/", 1, 6, 8);
  CHECK(gray.name == "pets");
  CHECK((gray.n == 3 && gray.h == 6 && gray.w == 8 && gray.c == 1));
  CHECK(gray.pixels.size() == 3 * 48);
}

TEST_CASE("image folder errors name the folder or file", "[data][image_folder]") {
  TempDir tmp;
  const fs::path root = tmp.path / "pets";
  write_folder(root);
  write_png(root / "dog" / "big.png", 5, 5, 0);
  CHECK_THROWS_WITH(load_image_folder(root.string(), 3, 0, 0),
                    Contains("big.png is 5x5 but the first image") && Contains("cat/a.png"));
  CHECK(load_image_folder(root.string(), 3, 4, 4).n == 4);  // resizing makes them fit

  write_text(root / "dog" / "notes.txt", "hello");
  CHECK_THROWS_WITH(load_image_folder(root.string(), 3, 4, 4),
                    Contains("notes.txt: not a readable image"));
  fs::remove(root / "dog" / "notes.txt");

  fs::create_directories(root / "emu");
  CHECK_THROWS_WITH(load_image_folder(root.string(), 3, 4, 4),
                    Contains("class folder") && Contains("emu holds no image files"));
  fs::create_directories(tmp.path / "empty");
  CHECK_THROWS_WITH(load_image_folder((tmp.path / "empty").string(), 3, 0, 0),
                    Contains("has no class subfolders"));
  CHECK_THROWS_WITH(load_image_folder((tmp.path / "absent").string(), 3, 0, 0),
                    Contains("absent does not exist"));
  CHECK_THROWS_WITH(load_image_folder(root.string(), 2, 0, 0), Contains("channels must be 1 or 3"));
}
