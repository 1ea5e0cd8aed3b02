// Strict reading of text that comes from files and the command line: numbers (the whole text
// must be the number, in range), JSON nesting depth (nlohmann's parser and dump() recurse, so
// deep input would overflow the stack), and control bytes escaped before any file-derived
// string reaches an error message or the terminal. Header-only so that every library can use
// it without a link dependency.
#pragma once
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "kernels/error.h"

namespace osprey {

// Bytes below 0x20 and 0x7f, and the C1 controls U+0080..U+009F in UTF-8 (0xc2 0x80..0x9f; 0x9b
// is CSI for some terminals), written as \xNN, so an ESC/OSC sequence or a newline from a data
// file cannot drive the terminal or forge output lines; everything else, UTF-8 included, is
// kept. Idempotent (a backslash is kept as it is), so layers may each apply it.
inline std::string printable(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto escape = [&](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c < 0x20 || c == 0x7f) {
      escape(c);
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      escape(c);
      escape(next);
      ++i;
    } else {
      out += char(c);
    }
  }
  return out;
}

// The integer that is the whole of `text` (optional '-', decimal digits; no spaces, no '+'),
// within [lo, hi]. `what` names the source in the error, e.g. "checkpoint 'c.safetensors':
// metadata 'epoch'".
inline int64_t parse_int(const std::string& text, int64_t lo, int64_t hi, const std::string& what) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end || v < lo || v > hi)
    fail(what, ": '", printable(text), "' is not an integer in [", lo, ", ", hi, "]");
  return v;
}

// As parse_int, for the full unsigned 64-bit range (RNG counters, seeds).
inline uint64_t parse_uint64(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end)
    fail(what, ": '", printable(text), "' is not an integer in [0, ", UINT64_MAX, "]");
  return v;
}

// The finite decimal number that is the whole of `text` (e.g. "0.5", "-1e-3"; no "nan", "inf",
// spaces or '+'), within [lo, hi].
inline double parse_double(const std::string& text, double lo, double hi, const std::string& what) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end || !std::isfinite(v) || v < lo || v > hi)
    fail(what, ": '", printable(text), "' is not a number in [", lo, ", ", hi, "]");
  return v;
}

// Default bound of check_json_depth: real configs and headers nest a few levels.
constexpr int kMaxJsonDepth = 64;

// Fails (naming `what`) when the JSON text nests arrays/objects deeper than max_depth; run it
// before json::parse on anything read from a file or the command line. Brackets inside strings
// do not count; the text need not be valid JSON (the parser reports that).
inline void check_json_depth(const std::string& text, const std::string& what,
                             int max_depth = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) fail(what, ": JSON nested deeper than ", max_depth, " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// a * b and a + b for sizes read from files: fail (naming `what`) instead of overflowing.
inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    fail(what, ": size ", a, " x ", b, " overflows");
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
    fail(what, ": size ", a, " + ", b, " overflows");
  return r;
}

// The shortest decimal that reads back as v, so a JSON file says 0.001 for 1e-3f rather than
// the float's exact binary value 0.0010000000474974513.
inline double shortest_decimal(float v) {
  if (!std::isfinite(v)) return double(v);
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {  // 9 significant digits always round-trip
    std::snprintf(text, sizeof text, "%.*g", digits, double(v));
    if (std::strtof(text, nullptr) == v) break;
  }
  return std::strtod(text, nullptr);
}

}  // namespace osprey
