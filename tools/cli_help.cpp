#include "tools/cli_help.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "tools/config.h"

namespace osprey::tools {

std::string wrap_words(const std::string& text, size_t width, size_t indent) {
  std::istringstream words(text);
  std::string out, word;
  size_t column = indent;
  bool line_empty = true;
  while (words >> word) {
    if (!line_empty && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent, line_empty = true;
    }
    if (!line_empty) out += ' ', ++column;
    out += word;
    column += word.size();
    line_empty = false;
  }
  return out;
}

namespace {

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + "  " : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string config_reference_text(size_t width) {
  const std::vector<ConfigKeyInfo> rows = config_reference();
  size_t key_width = 0;
  for (const auto& r : rows) key_width = std::max(key_width, r.name.size() + 2);
  const size_t type_width = 8, default_width = 20;
  std::string s =
      "Config keys (--config FILE holds them as one JSON object; --set KEY=VALUE sets "
      "one):\n";
  s +=
      pad("KEY", key_width) + pad("TYPE", type_width) + pad("DEFAULT", default_width) + "ALLOWED\n";
  for (const auto& r : rows) {
    const std::string start = pad(r.name, key_width) + pad(r.type, type_width);
    std::string line = start + pad(r.default_value, default_width) + r.allowed;
    if (r.allowed.empty())
      line = start + r.default_value;
    else if (line.size() > width)  // the allowed values on a line of their own
      line = start + r.default_value + "\n" + std::string(start.size(), ' ') + r.allowed;
    s += line + "\n" + std::string(key_width, ' ') + wrap_words(r.meaning, width, key_width) + "\n";
  }
  s += "\n" +
       wrap_words(
           "--set reads VALUE as JSON when it parses (3, 0.1, true, [0.5]), else as a "
           "string. A config file may also hold a \"provenance\" object, as a run's "
           "config.json does; it is ignored, so a run's config.json works as --config. "
           "Relative data_dir and init_from in a file are taken from the file's folder; "
           "runs_dir stays relative to the working directory.",
           width, 0) +
       "\n";
  return s;
}

}  // namespace osprey::tools
