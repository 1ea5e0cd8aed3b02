#include "data/typefaces.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_BBOX_H
#include FT_OUTLINE_H

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "data/tmnist.h"
#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

namespace fs = std::filesystem;

class FreeType {
 public:
  FreeType() {
    const FT_Error e = FT_Init_FreeType(&lib_);
    OSPREY_CHECK(e == 0, "FreeType: cannot initialise (error ", e, ")");
  }
  ~FreeType() { FT_Done_FreeType(lib_); }
  FreeType(const FreeType&) = delete;
  FreeType& operator=(const FreeType&) = delete;
  FT_Library get() const { return lib_; }

 private:
  FT_Library lib_ = nullptr;
};

struct FaceCloser {
  void operator()(FT_FaceRec_* face) const { FT_Done_Face(face); }
};
using FacePtr = std::unique_ptr<FT_FaceRec_, FaceCloser>;

// The face, or null with why set.
FacePtr open_face(FT_Library lib, const std::string& file, int index, std::string& why) {
  FT_Face face = nullptr;
  const FT_Error e = FT_New_Face(lib, file.c_str(), index, &face);
  if (e != 0) why = "FreeType cannot open it (error " + std::to_string(e) + ")";
  return FacePtr(e == 0 ? face : nullptr);
}

// Scales the outline (font units) so that its bounding box's longer side spans the frame less
// the margins, centres that box, and rasterizes it anti-aliased into dst (28 x 28, top row
// first). Done on the outline rather than on a rendered bitmap, so each image is rasterized
// once at its final size: FreeType's coverage is then exact, with no second resampling blur.
void rasterize(FT_Library lib, FT_Outline& outline, uint8_t* dst) {
  FT_BBox box;
  FT_Outline_Get_BBox(&outline, &box);
  const double w = double(box.xMax - box.xMin), h = double(box.yMax - box.yMin);
  const double scale = (kGlyphSide - 2 * kGlyphMargin) * 64.0 / std::max({w, h, 1.0});
  const double cx = (box.xMin + box.xMax) / 2.0, cy = (box.yMin + box.yMax) / 2.0;
  const double mid = kGlyphSide * 32.0;  // the frame's centre in 26.6 pixels
  for (int i = 0; i < outline.n_points; ++i) {
    FT_Vector& p = outline.points[i];
    p.x = FT_Pos(std::lround((double(p.x) - cx) * scale + mid));
    p.y = FT_Pos(std::lround((double(p.y) - cy) * scale + mid));
  }
  FT_Bitmap bitmap{};
  bitmap.rows = bitmap.width = kGlyphSide;
  bitmap.pitch = kGlyphSide;
  bitmap.buffer = dst;
  bitmap.pixel_mode = FT_PIXEL_MODE_GRAY;
  bitmap.num_grays = 256;
  const FT_Error e = FT_Outline_Get_Bitmap(lib, &outline, &bitmap);
  OSPREY_CHECK(e == 0, "FreeType: cannot rasterize a glyph (error ", e, ")");
}

// How many of ten letters whose lower case differs in shape from the capital come out like the
// capital: all-caps and small-caps fonts give (nearly) all ten.
int letters_like_capitals(const std::vector<uint8_t>& images) {
  int like = 0;
  for (char ch : std::string("abdeghnqrt")) {
    const uint8_t* lower = images.data() + size_t(ch - '!') * kGlyphPixels;
    const uint8_t* upper = images.data() + size_t(ch - 'a' + 'A' - '!') * kGlyphPixels;
    int64_t diff = 0;
    for (int k = 0; k < kGlyphPixels; ++k) diff += std::abs(int(lower[k]) - int(upper[k]));
    like += diff < int64_t(kGlyphPixels) * 16;  // a mean difference under 16 of 255
  }
  return like;
}

// How many glyphs fill the frame both ways: a keycap font's boxes all do, while in a text font
// only the squarish ones (M, W, #, @, ...) reach the margins on their shorter side.
int glyphs_filling_the_frame(const std::vector<uint8_t>& images) {
  int filling = 0;
  for (int k = 0; k < kTmnistClasses; ++k) {
    const uint8_t* img = images.data() + size_t(k) * kGlyphPixels;
    int x0 = kGlyphSide, x1 = -1, y0 = kGlyphSide, y1 = -1;
    for (int y = 0; y < kGlyphSide; ++y)
      for (int x = 0; x < kGlyphSide; ++x)
        if (img[y * kGlyphSide + x] != 0)
          x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    const int fill = kGlyphSide - 2 * kGlyphMargin - 2;
    filling += x1 - x0 + 1 >= fill && y1 - y0 + 1 >= fill;
  }
  return filling;
}

// Renders the 94 glyphs into images (94 x 784); returns why the face cannot serve, or "".
std::string render_face(FT_Library lib, FT_Face face, std::vector<uint8_t>& images) {
  if (!FT_IS_SCALABLE(face)) return "bitmap-only (not scalable)";
  if (FT_Select_Charmap(face, FT_ENCODING_UNICODE) != 0)
    return "no Unicode character map (a symbol font)";
  images.assign(size_t(kTmnistClasses) * kGlyphPixels, 0);
  std::set<FT_UInt> glyphs;
  for (int k = 0; k < kTmnistClasses; ++k) {
    const std::string ch(1, char('!' + k));
    const FT_UInt glyph = FT_Get_Char_Index(face, FT_ULong('!' + k));
    if (glyph == 0) return "no glyph for '" + ch + "'";
    if (!glyphs.insert(glyph).second) return "'" + ch + "' shares its glyph with another character";
    if (FT_Load_Glyph(face, glyph, FT_LOAD_NO_SCALE) != 0)
      return "cannot load the glyph of '" + ch + "'";
    FT_GlyphSlot slot = face->glyph;
    if (slot->format != FT_GLYPH_FORMAT_OUTLINE || slot->outline.n_points == 0)
      return "no outline for '" + ch + "'";
    rasterize(lib, slot->outline, images.data() + size_t(k) * kGlyphPixels);
  }
  if (letters_like_capitals(images) >= 8) return "lower case drawn as capitals";
  if (glyphs_filling_the_frame(images) >= 80) return "every glyph fills its frame (keycaps)";
  return "";
}

std::string text_or(const char* s, const char* fallback) {
  return s != nullptr && *s != '\0' ? std::string(s) : std::string(fallback);
}

Typeface describe(FT_Face face, const std::string& file, int index) {
  Typeface t;
  t.family = text_or(face->family_name, "Unknown");
  t.style = text_or(face->style_name, "Regular");
  t.name = text_or(FT_Get_Postscript_Name(face), "");
  if (t.name.empty()) {
    t.name = t.family + "-" + t.style;
    t.name.erase(std::remove(t.name.begin(), t.name.end(), ' '), t.name.end());
  }
  t.file = file;
  t.face_index = index;
  return t;
}

bool is_font_file(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  static const std::set<std::string> known = {".ttf", ".otf", ".ttc", ".otc",
                                              ".pfb", ".pfa", ".t1"};
  return known.count(ext) != 0;
}

// Font files under dirs in path order, each real file once.
std::vector<std::string> font_files(const std::vector<std::string>& dirs) {
  std::vector<std::string> found;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    const auto options = fs::directory_options::skip_permission_denied;
    for (auto it = fs::recursive_directory_iterator(dir, options, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && is_font_file(it->path())) found.push_back(it->path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> files;
  std::set<std::string> real;
  for (const std::string& f : found) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(f, ec);
    if (real.insert(ec ? f : canonical.string()).second) files.push_back(f);
  }
  return files;
}

}  // namespace

std::vector<std::string> default_font_dirs() {
  std::vector<std::string> dirs = {"/usr/share/fonts", "/usr/local/share/fonts"};
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    dirs.push_back((fs::path(home) / ".local/share/fonts").string());
  return dirs;
}

TypefaceSet render_typefaces(const std::vector<std::string>& dirs) {
  FreeType ft;
  TypefaceSet set;
  std::set<std::pair<std::string, std::string>> names;  // family, style
  std::map<std::vector<uint8_t>, std::string> images_of;
  for (const std::string& file : font_files(dirs)) {
    std::string why;
    FacePtr first = open_face(ft.get(), file, 0, why);
    const int faces = first ? int(first->num_faces) : 1;
    for (int index = 0; index < faces; ++index) {
      FacePtr face = index == 0 ? std::move(first) : open_face(ft.get(), file, index, why);
      const std::string what = faces > 1 ? file + "#" + std::to_string(index) : file;
      if (!face) {
        set.skipped.push_back({what, why});
        continue;
      }
      Typeface t = describe(face.get(), file, index);
      if (!names.insert({t.family, t.style}).second) {
        set.skipped.push_back({what, "a second copy of " + t.family + " " + t.style});
        continue;
      }
      why = render_face(ft.get(), face.get(), t.pixels);
      if (why.empty()) {
        const auto [it, fresh] = images_of.emplace(t.pixels, t.name);
        if (!fresh) why = "the same images as " + it->second;
      }
      if (!why.empty()) {
        set.skipped.push_back({what, why});
        continue;
      }
      set.fonts.push_back(std::move(t));
    }
  }
  return set;
}

std::vector<uint8_t> render_font_glyphs(const std::string& file, int face_index) {
  FreeType ft;
  std::string why;
  FacePtr face = open_face(ft.get(), file, face_index, why);
  OSPREY_CHECK(face != nullptr, "font ", printable(file), ": ", why);
  std::vector<uint8_t> images;
  why = render_face(ft.get(), face.get(), images);
  OSPREY_CHECK(why.empty(), "font ", printable(file), ": ", why);
  return images;
}

}  // namespace osprey::data
