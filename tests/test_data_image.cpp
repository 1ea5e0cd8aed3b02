// Image decoding and image folders, on tiny PNG/JPEG files the tests encode with libpng and
// libjpeg-turbo, and on hostile files made from them: a Huffman table stb_image overflowed,
// truncations, header-only files, huge declared sizes, other formats.
#include <zlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/image_folder.h"
#include "kernels/error.h"
#include "tests/image_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace osprey::data;
using Catch::Matchers::Contains;

namespace {

using osprey::tests::jpeg_bytes;
using osprey::tests::png_bytes;
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

// Distinct, deterministic values for every byte of an h x w x c image.
std::vector<uint8_t> pattern(int h, int w, int c) {
  std::vector<uint8_t> px(size_t(h) * w * c);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i * 73 + 41) % 256);
  return px;
}

// A smooth h x w x c image (JPEG keeps it well, unlike noise).
std::vector<uint8_t> smooth(int h, int w, int c) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch) px.push_back(uint8_t(30 + 8 * x + 5 * y + 40 * ch));
  return px;
}

// One PNG chunk: length, type, data, CRC.
std::string png_chunk(const std::string& type, const std::string& data) {
  std::string out;
  for (int s = 24; s >= 0; s -= 8) out += char((data.size() >> s) & 0xff);
  const std::string body = type + data;
  out += body;
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()));
  for (int s = 24; s >= 0; s -= 8) out += char((crc >> s) & 0xff);
  return out;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

// Offset of the first JPEG marker FF <code> (markers before the entropy-coded data).
size_t jpeg_marker(const std::string& jpg, uint8_t code) {
  for (size_t i = 2; i + 1 < jpg.size(); ++i)
    if (uint8_t(jpg[i]) == 0xFF && uint8_t(jpg[i + 1]) == code) return i;
  FAIL("no JPEG marker FF " << int(code));
  return 0;
}

// The message decode_image throws on these bytes, or "" when it decodes them.
std::string decode_error(const std::string& bytes, const std::string& name, int channels = 3) {
  try {
    decode_image(bytes.data(), bytes.size(), channels, name);
  } catch (const osprey::Error& e) {
    return e.what();
  }
  return "";
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / double(a.size());
}

// PIL's convert("L"), written out here so the test does not share the decoder's code.
uint8_t pil_luma(int r, int g, int b) {
  return uint8_t((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

void write_png(const fs::path& path, int h, int w, int base) {
  write_bytes(path, png_bytes(rgb(h, w, base), h, w, 3));
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
  // PIL's gray: (19595 R + 38470 G + 7471 B + 32768) >> 16; pixel (1, 2) = (22, 20, 200) is 41
  // (stb_image's (77 R + 150 G + 29 B) >> 8 made it 40).
  img = load_image((tmp.path / "x.png").string(), 1);
  CHECK(img.c == 1);
  CHECK(int(img.pixels[6]) == 41);

  write_bytes(tmp.path / "y.jpg", jpeg_bytes(rgb(8, 8, 0), 8, 8, 3));
  img = load_image((tmp.path / "y.jpg").string(), 3);
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

TEST_CASE("PNG decodes pixel-exact in every channel layout and converts", "[data][image]") {
  const int h = 5, w = 7;
  for (int c = 1; c <= 4; ++c) {
    INFO("channels " << c);
    const std::vector<uint8_t> px = pattern(h, w, c);
    const std::string png = png_bytes(px, h, w, c);
    Image img = decode_image(png.data(), png.size(), 0, "p.png");
    CHECK((img.h == h && img.w == w && img.c == c));
    CHECK(img.pixels == px);
    int ph = 0, pw = 0;
    probe_image(png.data(), png.size(), "p.png", ph, pw);
    CHECK((ph == h && pw == w));
    for (int to = 1; to <= 4; ++to) {
      INFO("to " << to);
      img = decode_image(png.data(), png.size(), to, "p.png");
      REQUIRE((img.c == to && img.pixels.size() == size_t(h * w * to)));
      for (int i = 0; i < h * w; ++i) {
        const uint8_t* s = &px[size_t(i * c)];
        const uint8_t* d = &img.pixels[size_t(i * to)];
        const uint8_t gray = c >= 3 ? pil_luma(s[0], s[1], s[2]) : s[0];
        const uint8_t alpha = c == 2 || c == 4 ? s[c - 1] : 255;
        if (to <= 2) REQUIRE(d[0] == gray);
        for (int k = 0; to >= 3 && k < 3; ++k) REQUIRE(d[k] == (c >= 3 ? s[k] : gray));
        if (to == 2 || to == 4) REQUIRE(d[to - 1] == alpha);
      }
    }
  }
  // PIL's levels of pure red, green and blue (stb_image gave 76, 149, 28).
  const std::string prim = png_bytes({255, 0, 0, 0, 255, 0, 0, 0, 255}, 1, 3, 3);
  CHECK(decode_image(prim.data(), prim.size(), 1, "prim.png").pixels ==
        std::vector<uint8_t>{76, 150, 29});
  // 16-bit gray (no gAMA chunk) scales to 8 bits as PIL and stb_image read it, not as linear
  // light: libpng's default would turn 0x1234 into 75.
  std::string rows("\0\x12\x34\xff\xff\0\0\x80\x80", 9);
  std::string z(compressBound(uLong(rows.size())), '\0');
  uLongf zlen = uLongf(z.size());
  REQUIRE(compress(reinterpret_cast<Bytef*>(z.data()), &zlen,
                   reinterpret_cast<const Bytef*>(rows.data()), uLong(rows.size())) == Z_OK);
  const std::string deep = std::string("\x89PNG\r\n\x1a\n", 8) +
                           png_chunk("IHDR", be32(4) + be32(1) + std::string("\x10\0\0\0\0", 5)) +
                           png_chunk("IDAT", z.substr(0, zlen)) + png_chunk("IEND", "");
  const std::vector<uint8_t> deep8 = decode_image(deep.data(), deep.size(), 0, "16.png").pixels;
  REQUIRE(deep8.size() == 4);
  CHECK((std::abs(deep8[0] - 0x12) <= 1 && deep8[1] == 255 && deep8[2] == 0 &&
         std::abs(deep8[3] - 0x80) <= 1));
  // A palette expands to RGB.
  const std::string pal = png_bytes({2, 0, 1, 1}, 2, 2, 3, {10, 20, 30, 40, 50, 60, 70, 80, 90});
  Image img = decode_image(pal.data(), pal.size(), 0, "pal.png");
  CHECK(img.c == 3);
  CHECK(img.pixels == std::vector<uint8_t>{70, 80, 90, 10, 20, 30, 40, 50, 60, 40, 50, 60});
}

TEST_CASE("JPEG decodes close to the source, gray and RGB both ways", "[data][image]") {
  const int h = 16, w = 16;
  const std::vector<uint8_t> px = smooth(h, w, 3);
  const std::string jpg = jpeg_bytes(px, h, w, 3);
  Image img = decode_image(jpg.data(), jpg.size(), 0, "c.jpg");
  CHECK((img.h == h && img.w == w && img.c == 3));
  CHECK(mean_abs_diff(img.pixels, px) < 2.0);
  std::vector<uint8_t> luma;
  for (size_t i = 0; i < px.size(); i += 3) luma.push_back(pil_luma(px[i], px[i + 1], px[i + 2]));
  img = decode_image(jpg.data(), jpg.size(), 1, "c.jpg");
  CHECK(img.c == 1);
  CHECK(mean_abs_diff(img.pixels, luma) < 2.0);

  const std::vector<uint8_t> g = smooth(h, w, 1);
  const std::string gray = jpeg_bytes(g, h, w, 1);
  img = decode_image(gray.data(), gray.size(), 0, "g.jpg");
  CHECK(img.c == 1);
  CHECK(mean_abs_diff(img.pixels, g) < 2.0);
  Image three = decode_image(gray.data(), gray.size(), 3, "g.jpg");
  REQUIRE(three.c == 3);
  for (size_t i = 0; i < g.size(); ++i)
    REQUIRE((three.pixels[3 * i] == img.pixels[i] && three.pixels[3 * i + 1] == img.pixels[i] &&
             three.pixels[3 * i + 2] == img.pixels[i]));

  // Adobe's (inverted) CMYK comes out as RGB = C K / 255, ... as stb_image made it.
  const std::vector<uint8_t> cmyk = smooth(h, w, 4);
  const std::string cm = jpeg_bytes(cmyk, h, w, 4);
  img = decode_image(cm.data(), cm.size(), 0, "k.jpg");
  REQUIRE(img.c == 3);
  std::vector<uint8_t> want;
  for (size_t i = 0; i < cmyk.size(); i += 4)
    for (int k = 0; k < 3; ++k) want.push_back(uint8_t(cmyk[i + k] * cmyk[i + 3] / 255));
  CHECK(mean_abs_diff(img.pixels, want) < 2.0);
}

TEST_CASE("a JPEG Huffman table of more than 256 codes is refused", "[data][image]") {
  // stb_image 2.27 wrote such a table's code sizes past its 257-byte array (stb_image.h:1990).
  std::string jpg = jpeg_bytes(smooth(16, 16, 3), 16, 16, 3);
  const size_t dht = jpeg_marker(jpg, 0xC4);  // FF C4, length (2), class/id (1), 16 counts
  for (int i = 0; i < 16; ++i) jpg[dht + 5 + size_t(i)] = char(20);  // 320 codes
  const std::string err = decode_error(jpg, "dht.jpg");
  CHECK_THAT(err, Contains("image dht.jpg: not a readable JPEG") && Contains("Huffman"));
  int h = 0, w = 0;
  CHECK_THROWS_WITH(probe_image(jpg.data(), jpg.size(), "dht.jpg", h, w), Contains("Huffman"));
}

TEST_CASE("truncated PNG and JPEG files are refused at every length", "[data][image]") {
  const std::string png = png_bytes(pattern(12, 10, 3), 12, 10, 3);
  const std::string jpg = jpeg_bytes(smooth(24, 24, 3), 24, 24, 3);
  for (const std::string* file : {&png, &jpg}) {
    const std::string name = file == &png ? "cut.png" : "cut.jpg";
    REQUIRE(decode_error(*file, name).empty());
    for (size_t len = 1; len < file->size(); ++len) {
      const std::string err = decode_error(file->substr(0, len), name);
      INFO(name << " cut to " << len << " of " << file->size() << " bytes");
      REQUIRE_THAT(err, Contains("image " + name + ": "));
    }
  }
  // libjpeg-turbo would fill the missing scan with gray and only warn.
  CHECK_THAT(decode_error(jpg.substr(0, jpg.size() / 2), "half.jpg"),
             Contains("image half.jpg: corrupt or truncated JPEG") && Contains("Premature end"));
  CHECK_THAT(decode_error(png.substr(0, png.size() - 30), "half.png"),
             Contains("image half.png: corrupt or truncated PNG"));
}

TEST_CASE("header-only PNG and JPEG files are refused, not decoded as blank", "[data][image]") {
  const std::string png = png_bytes(pattern(64, 64, 3), 64, 64, 3);
  const std::string iend = png.substr(png.size() - 12);
  // Signature and IHDR (8 + 25 bytes), then IEND: no IDAT.
  CHECK_THAT(decode_error(png.substr(0, 33) + iend, "hdr.png"), Contains("image hdr.png: "));
  const std::string jpg = jpeg_bytes(smooth(64, 64, 3), 64, 64, 3);
  const size_t sos = jpeg_marker(jpg, 0xDA);
  const size_t sos_end = sos + 2 + size_t(uint8_t(jpg[sos + 2]) << 8 | uint8_t(jpg[sos + 3]));
  // The tables and SOF, then EOI; and the same with the scan header but no scan data.
  CHECK_THAT(decode_error(jpg.substr(0, sos) + "\xFF\xD9", "sof.jpg"), Contains("image sof.jpg: "));
  CHECK_THAT(decode_error(jpg.substr(0, sos_end) + "\xFF\xD9", "sos.jpg"),
             Contains("image sos.jpg: corrupt or truncated JPEG"));
  // The old PNM case: a 4096x4096 header and nothing else.
  CHECK_THAT(decode_error("P5\n4096 4096\n255\n", "hdr.pgm"),
             Contains("image hdr.pgm: not a readable image (PNM is not supported"));
}

TEST_CASE("images over the pixel limit are refused from their header", "[data][image]") {
  // A PNG declaring 100000 x 100000 RGB (30 GB decoded) in a few dozen bytes.
  const std::string ihdr = be32(100000) + be32(100000) + std::string("\x08\x02\0\0\0", 5);
  const std::string huge = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                           png_chunk("IDAT", std::string("\x78\x9c\x03\0\0\0\0\x01", 8)) +
                           png_chunk("IEND", "");
  int h = 0, w = 0;
  probe_image(huge.data(), huge.size(), "huge.png", h, w);
  CHECK((h == 100000 && w == 100000));
  CHECK_THAT(decode_error(huge, "huge.png"),
             Contains("image huge.png: 100000x100000 exceeds the limit of 16777216 pixels"));
  // A JPEG whose SOF claims 60000 x 60000.
  std::string jpg = jpeg_bytes(smooth(8, 8, 3), 8, 8, 3);
  const size_t sof = jpeg_marker(jpg, 0xC0);  // FF C0, length (2), precision (1), height, width
  for (size_t at : {sof + 5, sof + 7}) jpg[at] = char(0xEA), jpg[at + 1] = char(0x60);
  CHECK_THAT(decode_error(jpg, "huge.jpg"), Contains("60000x60000 exceeds the limit"));
  // The bound is exact and the caller's to choose.
  const std::string png = png_bytes(pattern(64, 64, 1), 64, 64, 1);
  CHECK(decode_image(png.data(), png.size(), 1, "p.png", 64 * 64).pixels.size() == 64 * 64);
  CHECK_THROWS_WITH(decode_image(png.data(), png.size(), 1, "p.png", 64 * 64 - 1),
                    Contains("image p.png: 64x64 exceeds the limit of 4095 pixels"));
}

TEST_CASE("non-images and other formats get one clear message", "[data][image]") {
  CHECK_THAT(decode_error("", "e.png"), Contains("image e.png: is empty (0 bytes)"));
  const std::string supported = "supported formats: PNG, JPEG";
  CHECK_THAT(
      decode_error("hello, not an image", "t.png"),
      Contains("image t.png: not a readable image (neither PNG nor JPEG") && Contains(supported));
  CHECK_THAT(decode_error(std::string("BM\x36\0\0\0\0\0", 8), "a.bmp"),
             Contains("image a.bmp: not a readable image (BMP is not supported; " + supported));
  CHECK_THAT(decode_error("GIF87a\x01\0\x01\0", "a.gif"), Contains("GIF is not supported"));
  CHECK_THAT(decode_error("\x89PN", "short.png"), Contains("image short.png: not a readable"));
  CHECK_THAT(decode_error("\xFF\xD8\xFF", "short.jpg"),
             Contains("image short.jpg: not a readable"));
  const std::string png = png_bytes(pattern(2, 2, 1), 2, 2, 1);
  CHECK_THAT(decode_error(png, "p.png", 5), Contains("channels must be 0..4"));
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
