#include "data/tmnist.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string_view>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

constexpr int kSide = 28, kPixels = kSide * kSide;
constexpr int kColumns = 2 + kPixels;  // names, labels, 1..784

// The location every message names.
struct At {
  std::string path;  // printable: it goes into messages
  int64_t line;
};

// Number of RFC 4180 fields in a line (commas outside quotes + 1); only used to word errors.
int64_t count_fields(const std::string& s) {
  int64_t n = 1;
  bool quoted = false;
  for (char ch : s) {
    if (ch == '"') quoted = !quoted;  // "" inside quotes toggles twice: no net change
    if (ch == ',' && !quoted) ++n;
  }
  return n;
}

[[noreturn]] void column_count_error(const At& at, const std::string& line) {
  fail("TMNIST file ", at.path, " line ", at.line, ": ", count_fields(line), " columns, expected ",
       kColumns, " (font name, label, 784 pixels)");
}

// Reads the field at pos (pos is at its first character) and moves pos past its separating
// comma. more tells whether another field follows.
std::string next_field(const At& at, const std::string& s, size_t& pos, bool& more, int column) {
  std::string out;
  if (pos < s.size() && s[pos] == '"') {
    for (++pos;; ++pos) {
      if (pos >= s.size())
        fail("TMNIST file ", at.path, " line ", at.line, ", column ", column,
             ": unterminated quoted field");
      if (s[pos] == '"') {
        if (pos + 1 < s.size() && s[pos + 1] == '"') {
          out += '"';
          ++pos;
          continue;
        }
        ++pos;
        break;
      }
      out += s[pos];
    }
    if (pos < s.size() && s[pos] != ',')
      fail("TMNIST file ", at.path, " line ", at.line, ", column ", column,
           ": unexpected character '", printable(std::string(1, s[pos])),
           "' after a closing quote");
  } else {
    const size_t end = std::min(s.find(',', pos), s.size());
    out.assign(s, pos, end - pos);
    pos = end;
  }
  more = pos < s.size();
  if (more) ++pos;  // the comma
  return out;
}

// Parses a decimal integer 0..255 from the whole of text.
uint8_t pixel_value(const At& at, std::string_view text, int column) {
  const auto where = [&] {
    return "TMNIST file " + at.path + " line " + std::to_string(at.line) + ", column " +
           std::to_string(column) + " (pixel " + std::to_string(column - 2) + "): ";
  };
  int value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9')
      fail(where(), "'", printable(std::string(text)), "' is not an integer");
    value = std::min(1000, value * 10 + (ch - '0'));  // saturate: any value > 255 is reported
  }
  if (text.empty()) fail(where(), "empty, expected an integer 0..255");
  if (value > 255) fail(where(), "value ", text, " is outside 0..255");
  return uint8_t(value);
}

void check_header(const At& at, const std::string& line) {
  size_t pos = 0;
  bool more = true;
  for (int col = 1; col <= kColumns; ++col) {
    if (!more) column_count_error(at, line);
    const std::string got = next_field(at, line, pos, more, col);
    const std::string want = col == 1 ? "names" : col == 2 ? "labels" : std::to_string(col - 2);
    if (got != want)
      fail("TMNIST file ", at.path, " line 1: bad header: column ", col, " is '", printable(got),
           "', expected '", want, "' (the header is names,labels,1,2,...,784)");
  }
  if (more) column_count_error(at, line);
}

}  // namespace

const std::vector<std::string>& tmnist_class_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (char ch = '!'; ch <= '~'; ++ch) v.emplace_back(1, ch);
    return v;
  }();
  return names;
}

Dataset load_tmnist(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  const std::string file = printable(csv_path);
  OSPREY_CHECK(in, "TMNIST file ", file, ": cannot open");
  Dataset ds;
  ds.name = "tmnist";
  ds.h = ds.w = kSide;
  ds.c = 1;
  ds.num_classes = kTmnistClasses;
  ds.class_names = tmnist_class_names();

  std::string line;
  At at{file, 0};
  bool header = false;
  while (std::getline(in, line)) {
    ++at.line;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (at.line == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
    if (!header) {
      check_header(at, line);
      header = true;
      continue;
    }
    if (line.empty()) continue;  // a trailing blank line

    size_t pos = 0;
    bool more = true;
    next_field(at, line, pos, more, 1);  // the font name: not kept
    if (!more) column_count_error(at, line);
    const std::string label = next_field(at, line, pos, more, 2);
    if (label.size() != 1 || label[0] < '!' || label[0] > '~')
      fail("TMNIST file ", file, " line ", at.line, ", column 2: label '", printable(label),
           "' is not one of the 94 printable ASCII characters '!'..'~'");
    ds.labels.push_back(label[0] - '!');
    const size_t base = ds.pixels.size();
    ds.pixels.resize(base + kPixels);
    for (int k = 0; k < kPixels; ++k) {
      if (!more) column_count_error(at, line);
      uint8_t& dst = ds.pixels[base + size_t(k)];
      if (line[pos] == '"') {  // rare: quoted numbers
        dst = pixel_value(at, next_field(at, line, pos, more, 3 + k), 3 + k);
        continue;
      }
      // The common case without a copy: 220 million fields in the full file.
      const size_t end = std::min(line.find(',', pos), line.size());
      dst = pixel_value(at, std::string_view(line).substr(pos, end - pos), 3 + k);
      more = end < line.size();
      pos = more ? end + 1 : end;
    }
    if (more) column_count_error(at, line);
    OSPREY_CHECK(ds.labels.size() < size_t(INT32_MAX), "TMNIST file ", file, ": too many rows");
  }
  OSPREY_CHECK(!in.bad(), "TMNIST file ", file, ": read error after line ", at.line);
  OSPREY_CHECK(header, "TMNIST file ", file,
               ": is empty, expected the header names,labels,1,2,...,784");
  OSPREY_CHECK(!ds.labels.empty(), "TMNIST file ", file, ": has a header but no data rows");
  ds.n = int(ds.labels.size());
  return ds;
}

}  // namespace osprey::data
