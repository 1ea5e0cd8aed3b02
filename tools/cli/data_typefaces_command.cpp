// osprey data typefaces: the installed fonts' ASCII glyphs as a TMNIST-format dataset.
#include <cstdio>
#include <memory>

#include "data/typefaces.h"
#include "engine/parse.h"
#include "tools/cli/commands.h"

namespace osprey::cli {
namespace {

struct TypefaceOptions {
  std::string out = "data/typefaces";
  std::vector<std::string> font_dirs;
  double test_fraction = 0.2;
  bool list_skipped = false;
};

int run_typefaces(const TypefaceOptions& o) {
  const std::vector<std::string> dirs =
      o.font_dirs.empty() ? data::default_font_dirs() : o.font_dirs;
  const data::TypefaceSet set = data::render_typefaces(dirs);
  if (o.list_skipped)
    for (const data::TypefaceSkip& s : set.skipped)
      std::printf("skipped %s: %s\n", printable(s.what).c_str(), printable(s.why).c_str());
  if (set.fonts.empty()) {
    std::string where;
    for (const std::string& d : dirs) where += (where.empty() ? "" : ", ") + printable(d);
    fail("no usable fonts under ", where, " (", set.skipped.size(),
         " faces skipped; --list-skipped says why): install some, e.g. apt-get install "
         "fonts-dejavu-core fonts-liberation2 (tools/install_deps.sh lists the set)");
  }
  const data::TypefaceFiles f = data::write_typeface_dataset(set, o.out, o.test_fraction);
  std::printf(
      "%zu fonts (%zu faces skipped), %lld images of 94 classes: train %d fonts / %lld images, "
      "test %d fonts / %lld images\nwrote %s/{train.csv,test.csv,fonts.csv,sample.png}\n",
      set.fonts.size(), set.skipped.size(), static_cast<long long>(f.train_images + f.test_images),
      f.train_fonts, static_cast<long long>(f.train_images), f.test_fonts,
      static_cast<long long>(f.test_images), printable(o.out).c_str());
  return 0;
}

}  // namespace

void add_data_typefaces_command(CLI::App* data, Commands& commands) {
  auto o = std::make_shared<TypefaceOptions>();
  auto* cmd = data->add_subcommand(
      "typefaces",
      "Render the 94 printable ASCII glyphs of every installed font into 28x28 TMNIST images "
      "(train.csv, test.csv, fonts.csv, sample.png); each font is all train or all test");
  cmd->add_option("--out", o->out, "Output folder (the tmnist dataset's data_dir)")
      ->capture_default_str();
  cmd->add_option("--fonts-dir", o->font_dirs,
                  "Where to look for fonts, recursively (repeatable; default /usr/share/fonts, "
                  "/usr/local/share/fonts, ~/.local/share/fonts)");
  cmd->add_option("--test-fraction", o->test_fraction,
                  "Share of the fonts held out for test, chosen by a hash of the font's name")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--list-skipped", o->list_skipped, "Print each font face left out and why");
  commands.push_back({cmd, [o] { return run_typefaces(*o); }});
}

}  // namespace osprey::cli
