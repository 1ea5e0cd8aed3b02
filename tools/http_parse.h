// The HTTP/1.1 request parser of `osprey serve`'s front end: pure functions from bytes to a
// request or to a precise error (the status to answer and why), with every size limited, so
// that the event loop (tools/http_server.h) and the fuzz target drive the same code.
// Deliberately strict: CRLF line ends only, no obs-fold, no whitespace before ':', one Host,
// one decimal Content-Length, no Transfer-Encoding (bodies are Content-Length only).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace osprey::tools::http {

struct ParseLimits {
  size_t max_header_bytes = 8 << 10;  // request line + headers + the blank line
  int max_headers = 64;
  size_t max_body_bytes = 16 << 20;
};

struct Error {
  int status = 0;  // 0: no error
  std::string message;
};

struct Request {
  std::string method, target, path, query, version;          // query: after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  size_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string body;
  // The value of header `name` (lower case), or nullptr.
  const std::string* header(std::string_view name) const;
};

enum class Parse { kIncomplete, kComplete, kError };

// Parses the head (request line and headers) at the start of `buf`. kComplete sets `req`
// (body empty) and `head_bytes` (bytes consumed, the blank line included); kIncomplete means
// more bytes are needed and none of the limits is exceeded yet; kError sets `err`.
Parse parse_head(std::string_view buf, const ParseLimits& limits, Request& req, Error& err,
                 size_t& head_bytes);

// A whole request (head and Content-Length body) at the start of `buf`; `consumed` is its
// length, so that pipelined requests can be parsed one after the other.
Parse parse_request(std::string_view buf, const ParseLimits& limits, Request& req, Error& err,
                    size_t& consumed);

// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}} ('+' is a space); false with err on a bad escape.
bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out,
                 Error& err);

struct FormPart {
  std::string name, filename, content_type;
  std::string_view data;  // into the body given to parse_multipart
};

// True when content_type is multipart/form-data (any parameters).
bool is_multipart(std::string_view content_type);
// The parts of a multipart/form-data body (RFC 7578); false with err (400) when the boundary
// is missing or the body is not well formed.
bool parse_multipart(std::string_view body, std::string_view content_type,
                     std::vector<FormPart>& parts, Error& err);

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace osprey::tools::http
