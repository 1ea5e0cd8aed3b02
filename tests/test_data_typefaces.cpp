// osprey data typefaces' data layer: glyphs rendered from a real font (DejaVu, which
// tools/install_deps.sh installs), the TMNIST CSVs it writes and the font-level split.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/image.h"
#include "data/tmnist.h"
#include "data/typefaces.h"
#include "kernels/error.h"
#include "tests/test_support.h"

using namespace osprey::data;
using osprey::tests::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kDejaVuDir = "/usr/share/fonts/truetype/dejavu";
const std::string kDejaVuSans = kDejaVuDir + "/DejaVuSans.ttf";

bool have_dejavu() {
  if (fs::exists(kDejaVuSans)) return true;
  WARN("skipped: " << kDejaVuSans << " is missing (apt-get install fonts-dejavu-core)");
  return false;
}

struct InkBox {
  int x0 = kGlyphSide, y0 = kGlyphSide, x1 = -1, y1 = -1;  // inclusive
  int width() const { return x1 - x0 + 1; }
  int height() const { return y1 - y0 + 1; }
};

InkBox ink_box(const uint8_t* img) {
  InkBox b;
  for (int y = 0; y < kGlyphSide; ++y)
    for (int x = 0; x < kGlyphSide; ++x)
      if (img[y * kGlyphSide + x] != 0) {
        b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x);
        b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y);
      }
  return b;
}

int64_t ink(const uint8_t* img, int x0, int y0, int x1, int y1) {  // sum over [x0,x1) x [y0,y1)
  int64_t s = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) s += img[y * kGlyphSide + x];
  return s;
}

const uint8_t* glyph(const std::vector<uint8_t>& images, char ch) {
  return images.data() + size_t(ch - '!') * kGlyphPixels;
}

// A font-less set: n families of two styles each, every image filled with its font's number
// (its first pixel: the glyph's class).
TypefaceSet synthetic_set(int families) {
  TypefaceSet set;
  for (int f = 0; f < families; ++f)
    for (const char* style : {"Regular", "Bold"}) {
      Typeface t;
      t.family = "Family " + std::to_string(f);
      t.style = style;
      t.name = f == 0 ? std::string("Odd, \"quoted\" ") + style : t.family + "-" + style;
      t.file = "/fonts/" + t.name;
      t.pixels.assign(size_t(kTmnistClasses) * kGlyphPixels, uint8_t(set.fonts.size()));
      for (int k = 0; k < kTmnistClasses; ++k) t.pixels[size_t(k) * kGlyphPixels] = uint8_t(k);
      set.fonts.push_back(t);
    }
  return set;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("typefaces: DejaVu Sans's 94 glyphs fill and centre the 28x28 frame",
          "[data][typefaces]") {
  if (!have_dejavu()) return;
  const std::vector<uint8_t> images = render_font_glyphs(kDejaVuSans);
  REQUIRE(images.size() == size_t(kTmnistClasses) * kGlyphPixels);
  const int lo = kGlyphMargin, hi = kGlyphSide - kGlyphMargin - 1;  // 2 and 25
  for (int k = 0; k < kTmnistClasses; ++k) {
    const char ch = char('!' + k);
    INFO("glyph '" << ch << "'");
    const InkBox b = ink_box(images.data() + size_t(k) * kGlyphPixels);
    REQUIRE(b.x1 >= 0);  // not empty
    // Scaled to fit: the longer side spans the frame less the margins (a pixel of rounding).
    const bool wide = b.width() >= b.height();
    CHECK((wide ? b.x0 : b.y0) >= lo - 1);
    CHECK((wide ? b.x0 : b.y0) <= lo);
    CHECK((wide ? b.x1 : b.y1) >= hi);
    CHECK((wide ? b.x1 : b.y1) <= hi + 1);
    CHECK(std::min(b.x0, b.y0) >= lo - 1);
    CHECK(std::max(b.x1, b.y1) <= hi + 1);
    // Centred by the bounding box.
    CHECK(std::abs((b.x0 + b.x1 + 1) - kGlyphSide) <= 2);
    CHECK(std::abs((b.y0 + b.y1 + 1) - kGlyphSide) <= 2);
  }
  // Upright and unmirrored: T's bar is at the top, L's stem on the left.
  CHECK(ink(glyph(images, 'T'), 0, 0, 28, 6) > 3 * ink(glyph(images, 'T'), 0, 22, 28, 28));
  CHECK(ink(glyph(images, 'L'), 0, 0, 8, 28) > 2 * ink(glyph(images, 'L'), 20, 0, 28, 28));
  // Anti-aliased: the curve of an O has partial coverage.
  const uint8_t* o = glyph(images, 'O');
  CHECK(std::count_if(o, o + kGlyphPixels, [](uint8_t v) { return v > 0 && v < 255; }) > 20);
  CHECK(*std::max_element(o, o + kGlyphPixels) == 255);
  // Different glyphs give different images.
  std::set<std::vector<uint8_t>> distinct;
  for (int k = 0; k < kTmnistClasses; ++k)
    distinct.emplace(glyph(images, char('!' + k)), glyph(images, char('!' + k)) + kGlyphPixels);
  CHECK(distinct.size() == size_t(kTmnistClasses));
  // Another font draws the same character differently.
  const std::vector<uint8_t> serif = render_font_glyphs(kDejaVuDir + "/DejaVuSerif.ttf");
  CHECK(!std::equal(o, o + kGlyphPixels, glyph(serif, 'O')));
}

TEST_CASE("typefaces: a file that is not a font is refused, by name", "[data][typefaces]") {
  TempDir tmp;
  std::ofstream(tmp.file("fake.ttf")) << "not a font";
  CHECK_THROWS_WITH(render_font_glyphs(tmp.file("fake.ttf")),
                    Catch::Contains("fake.ttf") && Catch::Contains("cannot open"));
}

TEST_CASE("typefaces: discovery keeps each font once and says why it skips the rest",
          "[data][typefaces]") {
  if (!have_dejavu()) return;
  TempDir tmp;
  fs::create_directories(tmp.path / "a" / "b");
  fs::copy_file(kDejaVuSans, tmp.path / "a" / "DejaVuSans.ttf");
  fs::copy_file(kDejaVuSans, tmp.path / "a" / "b" / "Copy.ttf");  // same family and style
  fs::copy_file(kDejaVuDir + "/DejaVuSans-Bold.ttf", tmp.path / "a" / "b" / "Bold.TTF");
  fs::create_symlink(tmp.path / "a" / "b" / "Bold.TTF", tmp.path / "link.ttf");
  std::ofstream(tmp.file("a/broken.otf")) << "not a font";
  std::ofstream(tmp.file("a/readme.txt")) << "not looked at";
  const TypefaceSet set = render_typefaces({tmp.path.string(), tmp.file("missing")});
  REQUIRE(set.fonts.size() == 2);
  CHECK(set.fonts[0].name == "DejaVuSans");  // a/DejaVuSans.ttf sorts before a/b/*
  CHECK(set.fonts[0].family == "DejaVu Sans");
  CHECK(set.fonts[0].style == "Book");
  CHECK(set.fonts[0].pixels == render_font_glyphs(kDejaVuSans));
  CHECK(set.fonts[1].name == "DejaVuSans-Bold");
  CHECK(set.fonts[1].style == "Bold");
  REQUIRE(set.skipped.size() == 2);  // the link is the same file as Bold.TTF: not even opened
  std::string why;
  for (const TypefaceSkip& s : set.skipped) why += s.what + ": " + s.why + "\n";
  CHECK_THAT(why, Catch::Contains("Copy.ttf: a second copy of DejaVu Sans Book"));
  CHECK_THAT(why, Catch::Contains("broken.otf: FreeType cannot open it"));
}

TEST_CASE("typefaces: the split is by font name, deterministic and near the fraction",
          "[data][typefaces]") {
  int in_test = 0;
  for (int f = 0; f < 1000; ++f) {
    const std::string name = "Font-" + std::to_string(f);
    CHECK(typeface_in_test(name, 0.2) == typeface_in_test(name, 0.2));
    CHECK_FALSE(typeface_in_test(name, 0.0));
    CHECK(typeface_in_test(name, 1.0));
    in_test += typeface_in_test(name, 0.2);
    // A font in test at 0.2 stays in test when more is held out.
    if (typeface_in_test(name, 0.2)) CHECK(typeface_in_test(name, 0.3));
  }
  CHECK(in_test > 150);
  CHECK(in_test < 250);
}

TEST_CASE("typefaces: train.csv and test.csv load as TMNIST, disjoint by font",
          "[data][typefaces]") {
  TempDir tmp;
  const TypefaceSet set = synthetic_set(30);
  const std::string out = tmp.file("out/sub");
  const TypefaceFiles files = write_typeface_dataset(set, out, 0.25);
  CHECK(files.train_fonts + files.test_fonts == 60);
  CHECK(files.test_fonts > 0);
  CHECK(files.train_fonts > 0);
  const Dataset train = load_tmnist(out + "/train.csv"), test = load_tmnist(out + "/test.csv");
  REQUIRE(train.n == files.train_fonts * kTmnistClasses);
  REQUIRE(test.n == files.test_fonts * kTmnistClasses);
  CHECK(train.num_classes == kTmnistClasses);
  CHECK(test.class_names == train.class_names);

  // Each row holds its font's pixels and its character's class, in class order per font.
  std::set<int> train_fonts, test_fonts;
  for (const auto& [ds, fonts] : {std::pair{&train, &train_fonts}, std::pair{&test, &test_fonts}})
    for (int i = 0; i < ds->n; ++i) {
      const uint8_t* px = ds->pixels.data() + size_t(i) * kGlyphPixels;
      CHECK(ds->labels[size_t(i)] == i % kTmnistClasses);
      CHECK(int(px[0]) == i % kTmnistClasses);
      fonts->insert(px[1]);
      const Typeface& font = set.fonts[px[1]];
      CHECK(std::equal(px, px + kGlyphPixels,
                       font.pixels.data() + size_t(i % kTmnistClasses) * kGlyphPixels));
      CHECK(typeface_in_test(font.name, 0.25) == (ds == &test));
    }
  CHECK(train_fonts.size() == size_t(files.train_fonts));
  CHECK(test_fonts.size() == size_t(files.test_fonts));

  const std::string list = read_text(out + "/fonts.csv");
  CHECK_THAT(list, Catch::StartsWith("name,family,style,split,file,face\n"));
  CHECK_THAT(list, Catch::Contains("\"Odd, \"\"quoted\"\" Bold\",Family 0,Bold,"));
  const Image sheet = load_image(out + "/sample.png", 0);
  CHECK(sheet.c == 1);
  CHECK(sheet.w == kTmnistClasses * kGlyphSide);
  CHECK(sheet.h == 24 * kGlyphSide);

  // The same set writes the same bytes.
  write_typeface_dataset(set, tmp.file("again"), 0.25);
  CHECK(read_text(tmp.file("again/train.csv")) == read_text(out + "/train.csv"));
  CHECK(read_text(tmp.file("again/test.csv")) == read_text(out + "/test.csv"));
}

TEST_CASE("typefaces: no fonts, an empty split or an unwritable folder fail clearly",
          "[data][typefaces]") {
  TempDir tmp;
  CHECK_THROWS_WITH(write_typeface_dataset({}, tmp.file("o"), 0.2),
                    Catch::Contains("no usable fonts"));
  CHECK_THROWS_WITH(write_typeface_dataset(synthetic_set(3), tmp.file("o"), 0.0),
                    Catch::Contains("leaves the test split empty"));
  CHECK_FALSE(fs::exists(tmp.file("o")));
  std::ofstream(tmp.file("file")) << "x";
  CHECK_THROWS_WITH(write_typeface_dataset(synthetic_set(30), tmp.file("file/o"), 0.25),
                    Catch::Contains("cannot create the output directory"));
}
