// The typeface dataset's files: the split, the TMNIST CSVs, the font list and the sample sheet.
#include <png.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "data/tmnist.h"
#include "data/typefaces.h"
#include "engine/parse.h"
#include "engine/safetensors.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

namespace fs = std::filesystem;

constexpr int kSampleRows = 24;

// An RFC 4180 field: quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

void append_number(std::string& out, unsigned v) {
  char digits[3];
  int n = 0;
  do {
    digits[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out += digits[--n];
}

// Up to kSampleRows fonts evenly spread over the set, one row of 94 glyphs each.
std::string sample_sheet(const std::vector<Typeface>& fonts) {
  const int rows = std::min<int>(kSampleRows, int(fonts.size()));
  const int width = kTmnistClasses * kGlyphSide;
  std::vector<uint8_t> sheet(size_t(rows) * kGlyphSide * width, 0);
  for (int r = 0; r < rows; ++r) {
    const Typeface& font = fonts[size_t(r) * fonts.size() / size_t(rows)];
    for (int k = 0; k < kTmnistClasses; ++k)
      for (int y = 0; y < kGlyphSide; ++y)
        std::memcpy(&sheet[(size_t(r) * kGlyphSide + y) * width + size_t(k) * kGlyphSide],
                    &font.pixels[size_t(k) * kGlyphPixels + size_t(y) * kGlyphSide], kGlyphSide);
  }
  return gray_png(sheet, rows * kGlyphSide, width);
}

std::string font_list(const std::vector<Typeface>& fonts, double test_fraction) {
  std::string out = "name,family,style,split,file,face\n";
  for (const Typeface& t : fonts)
    out += csv_field(t.name) + "," + csv_field(t.family) + "," + csv_field(t.style) + "," +
           (typeface_in_test(t.name, test_fraction) ? "test" : "train") + "," + csv_field(t.file) +
           "," + std::to_string(t.face_index) + "\n";
  return out;
}

}  // namespace

bool typeface_in_test(const std::string& name, double test_fraction) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return double(h % 1000) < test_fraction * 1000.0;
}

std::string typeface_csv(const std::vector<const Typeface*>& fonts) {
  std::string out = "names,labels";
  for (int k = 1; k <= kGlyphPixels; ++k) out += "," + std::to_string(k);
  out += "\n";
  out.reserve(out.size() + fonts.size() * kTmnistClasses * (kGlyphPixels * 3 + 40));
  for (const Typeface* font : fonts) {
    const std::string name = csv_field(font->name);
    for (int k = 0; k < kTmnistClasses; ++k) {
      out += name;
      out += ',';
      out += csv_field(std::string(1, char('!' + k)));
      for (int p = 0; p < kGlyphPixels; ++p) {
        out += ',';
        append_number(out, font->pixels[size_t(k) * kGlyphPixels + size_t(p)]);
      }
      out += '\n';
    }
  }
  return out;
}

std::string gray_png(const std::vector<uint8_t>& pixels, int h, int w) {
  OSPREY_CHECK(h > 0 && w > 0 && pixels.size() == size_t(h) * size_t(w),
               "gray_png: ", pixels.size(), " bytes for ", h, " x ", w, " pixels");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(w);
  img.height = png_uint_32(h);
  img.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  OSPREY_CHECK(png_image_write_get_memory_size(img, size, 0, pixels.data(), 0, nullptr),
               "libpng: cannot encode a PNG: ", img.message);
  std::string out(size, '\0');
  OSPREY_CHECK(png_image_write_to_memory(&img, out.data(), &size, 0, pixels.data(), 0, nullptr),
               "libpng: cannot encode a PNG: ", img.message);
  out.resize(size);
  return out;
}

TypefaceFiles write_typeface_dataset(const TypefaceSet& set, const std::string& dir,
                                     double test_fraction) {
  OSPREY_CHECK(!set.fonts.empty(), "no usable fonts found");
  TypefaceFiles files;
  std::vector<const Typeface*> train, test;
  for (const Typeface& t : set.fonts)
    (typeface_in_test(t.name, test_fraction) ? test : train).push_back(&t);
  files.train_fonts = int(train.size());
  files.test_fonts = int(test.size());
  files.train_images = int64_t(train.size()) * kTmnistClasses;
  files.test_images = int64_t(test.size()) * kTmnistClasses;
  OSPREY_CHECK(!train.empty() && !test.empty(), "the font-level split of ", set.fonts.size(),
               " fonts leaves the ", train.empty() ? "train" : "test",
               " split empty (test fraction ", test_fraction, "): more fonts are needed");

  std::error_code ec;
  fs::create_directories(dir, ec);
  OSPREY_CHECK(!ec && fs::is_directory(dir), "cannot create the output directory '", printable(dir),
               "'", ec ? ": " + ec.message() : std::string());
  const fs::path out(dir);
  write_file_atomic((out / "train.csv").string(), typeface_csv(train));
  write_file_atomic((out / "test.csv").string(), typeface_csv(test));
  write_file_atomic((out / "fonts.csv").string(), font_list(set.fonts, test_fraction));
  write_file_atomic((out / "sample.png").string(), sample_sheet(set.fonts));
  return files;
}

}  // namespace osprey::data
