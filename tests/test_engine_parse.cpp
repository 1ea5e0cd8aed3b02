// engine/parse.h: strict numbers, JSON depth, printable strings and checked sizes.
#include <catch2/catch.hpp>
#include <string>

#include "engine/parse.h"

using namespace osprey;

TEST_CASE("parse_int takes the whole text and its range, naming the source") {
  REQUIRE(parse_int("42", 0, 100, "f: k") == 42);
  REQUIRE(parse_int("-7", -10, 10, "f: k") == -7);
  REQUIRE(parse_int("9223372036854775807", 0, INT64_MAX, "f: k") == INT64_MAX);
  for (const char* bad :
       {"", "abc", "12abc", " 12", "12 ", "+5", "1.5", "0x10", "101", "99999999999999999999", "-1"})
    REQUIRE_THROWS_WITH(
        parse_int(bad, 0, 100, "file 'r.safetensors': metadata 'classes'"),
        Catch::Contains("file 'r.safetensors': metadata 'classes'") && Catch::Contains("[0, 100]"));
}

TEST_CASE("parse_uint64 and parse_double are as strict") {
  REQUIRE(parse_uint64("18446744073709551615", "k") == UINT64_MAX);
  REQUIRE_THROWS_WITH(parse_uint64("18446744073709551616", "meta 'rng'"),
                      Catch::Contains("meta 'rng'"));
  REQUIRE_THROWS(parse_uint64("-1", "k"));
  REQUIRE_THROWS(parse_uint64("", "k"));
  REQUIRE(parse_double("0.5", 0, 1, "k") == 0.5);
  REQUIRE(parse_double("-1e-3", -1, 1, "k") == -1e-3);
  for (const char* bad : {"", "nan", "inf", "-inf", "1e999", "0.5x", " 0.5", "2"})
    REQUIRE_THROWS_WITH(parse_double(bad, 0, 1, "meta 'width'"), Catch::Contains("meta 'width'"));
}

TEST_CASE("printable escapes control bytes and DEL, keeps UTF-8, is idempotent") {
  REQUIRE(printable("plain name") == "plain name");
  REQUIRE(printable("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07");
  REQUIRE(printable(std::string("a\nb\rc\x7f\0", 7)) == "a\\x0ab\\x0dc\\x7f\\x00");
  REQUIRE(printable(printable("\x1b[2J")) == "\\x1b[2J");
  REQUIRE(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  REQUIRE(printable("\xc2\x9b"
                    "2J \xc2\xa0") ==
          "\\xc2\\x9b"
          "2J \xc2\xa0");  // C1 CSI; NBSP kept
}

TEST_CASE("check_json_depth bounds nesting, ignoring brackets inside strings") {
  REQUIRE_NOTHROW(check_json_depth(R"({"a": [1, [2, {"b": "[[[[[[[["}]]})", "x", 4));
  REQUIRE_NOTHROW(check_json_depth(std::string(64, '[') + std::string(64, ']'), "x"));
  REQUIRE_THROWS_WITH(check_json_depth(std::string(65, '['), "config file 'c.json'"),
                      Catch::Contains("config file 'c.json'") && Catch::Contains("64"));
  REQUIRE_THROWS(check_json_depth(R"({"s": "\"", "a": [[[1]]]})", "x", 2));
}

TEST_CASE("checked_mul and checked_add refuse overflow and negatives") {
  REQUIRE(checked_mul(int64_t(1) << 31, int64_t(1) << 31, "t") == int64_t(1) << 62);
  REQUIRE_THROWS_WITH(checked_mul(int64_t(1) << 32, int64_t(1) << 32, "tensor 'w'"),
                      Catch::Contains("tensor 'w'") && Catch::Contains("overflows"));
  REQUIRE_THROWS(checked_mul(-1, 5, "t"));
  REQUIRE_THROWS(checked_add(INT64_MAX, 1, "t"));
  REQUIRE(checked_add(2, 3, "t") == 5);
}
