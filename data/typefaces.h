// The typeface dataset (osprey data typefaces): the 94 printable ASCII glyphs '!'..'~' of every
// scalable font installed on the system, rendered with FreeType into 28 x 28 grayscale images
// the way TMNIST's are (white anti-aliased glyph on black, scaled to fit, centred), written as
// TMNIST CSVs (data/tmnist.h) with a font-level train/test split and a sample-sheet PNG.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace osprey::data {

constexpr int kGlyphSide = 28;   // TMNIST's frame
constexpr int kGlyphMargin = 2;  // the glyph's longer side spans 28 - 2 * 2 = 24 pixels
constexpr int kGlyphPixels = kGlyphSide * kGlyphSide;

struct Typeface {
  std::string name;  // the CSV's names column and the split's key: the PostScript name, else
                     // family-style
  std::string family, style;
  std::string file;  // where it was found, and the face's index in a collection (.ttc)
  int face_index = 0;
  std::vector<uint8_t> pixels;  // 94 images of 784 bytes, class order ('!' first)
};

// A font file or face left out, and why (printed by the command).
struct TypefaceSkip {
  std::string what;  // file, or file#face
  std::string why;
};

struct TypefaceSet {
  std::vector<Typeface> fonts;  // in file-path order, then face order
  std::vector<TypefaceSkip> skipped;
};

// /usr/share/fonts, /usr/local/share/fonts and $HOME/.local/share/fonts: where Debian's fonts-*
// packages and fontconfig put them.
std::vector<std::string> default_font_dirs();

// Every face of every font file (.ttf .otf .ttc .otc .pfb .pfa .t1) under dirs (recursively;
// dirs that do not exist are passed over), each file once however many links lead to it.
// Faces that cannot serve are skipped with a reason: not scalable (bitmap-only), no Unicode
// character map (symbol fonts), any of the 94 characters missing or sharing another's glyph,
// lower case drawn as capitals (all-caps and small-caps fonts, indistinguishable once scaled),
// every glyph in a box (keycap fonts), or a duplicate of an earlier font (the same family and
// style, or the same 94 images).
TypefaceSet render_typefaces(const std::vector<std::string>& dirs);

// The 94 images of face face_index of one font file (throws osprey::Error if it lacks a glyph
// or cannot be read): each glyph's outline, unhinted, scaled so that the longer side of its
// bounding box spans 24 pixels, centred by that box in the 28 x 28 frame, rasterized with
// FreeType's anti-aliasing renderer (8-bit coverage, 255 = ink).
std::vector<uint8_t> render_font_glyphs(const std::string& file, int face_index = 0);

// Whether a font goes to the test split: FNV-1a of its name, mod 1000, below 1000 *
// test_fraction. Depends on the name alone, so adding or removing fonts moves no other font, and
// a font's 94 glyphs are all on one side.
bool typeface_in_test(const std::string& name, double test_fraction);

// TMNIST CSV text (header names,labels,1..784, one row per font and glyph).
std::string typeface_csv(const std::vector<const Typeface*>& fonts);

// An 8-bit grayscale PNG of h x w pixels.
std::string gray_png(const std::vector<uint8_t>& pixels, int h, int w);

struct TypefaceFiles {
  int train_fonts = 0, test_fonts = 0;
  int64_t train_images = 0, test_images = 0;
};

// Writes dir/train.csv, dir/test.csv (TMNIST format), dir/fonts.csv (name, family, style,
// split, file, face) and dir/sample.png (up to 24 fonts spread over the set, one row of 94
// glyphs each), each atomically (temporary file and rename). Creates dir. Throws osprey::Error
// when the set is empty, a split would be empty, or dir cannot be written.
TypefaceFiles write_typeface_dataset(const TypefaceSet& set, const std::string& dir,
                                     double test_fraction);

}  // namespace osprey::data
