#include "tools/http_parse.h"

#include <algorithm>

namespace osprey::tools::http {
namespace {

// RFC 9110 5.6.2 token characters.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}
std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
Parse error(Error& err, int status, std::string message) {
  err.status = status;
  err.message = std::move(message);
  return Parse::kError;
}
// Bytes in error messages: printable ASCII kept, the rest as '?', at most 64.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 64 ? out + "..." : out;
}

Parse parse_request_line(std::string_view line, Request& req, Error& err) {
  size_t sp1 = line.find(' '), sp2 = sp1 == line.npos ? line.npos : line.find(' ', sp1 + 1);
  if (sp2 == line.npos || line.find(' ', sp2 + 1) != line.npos)
    return error(err, 400, "malformed request line: expected 'METHOD /target HTTP/1.1'");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!is_token(method) || method.size() > 20)
    return error(err, 400, "malformed request method '" + shown(method) + "'");
  if (target.empty() || target[0] != '/')
    return error(err, 400, "request target must be a path starting with '/'");
  for (char c : target)
    if (c < 0x21 || c > 0x7e) return error(err, 400, "request target holds a byte outside ASCII");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    bool http_like = version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[6] == '.';
    return error(err, http_like ? 505 : 400,
                 "unsupported protocol '" + shown(version) + "': HTTP/1.1 or HTTP/1.0 only");
  }
  req.method = method, req.target = target, req.version = version;
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  req.query = q == target.npos ? "" : target.substr(q + 1);
  return Parse::kComplete;
}

Parse parse_header_line(std::string_view line, Request& req, Error& err) {
  if (line[0] == ' ' || line[0] == '\t')
    return error(err, 400, "folded header line (obs-fold) is not accepted");
  size_t colon = line.find(':');
  if (colon == line.npos || !is_token(line.substr(0, colon)))
    return error(err, 400, "malformed header line '" + shown(line) + "'");
  std::string_view value = trim(line.substr(colon + 1));
  for (char c : value)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      return error(err, 400, "control byte in header '" + shown(line.substr(0, colon)) + "'");
  req.headers.emplace_back(lowered(line.substr(0, colon)), std::string(value));
  return Parse::kComplete;
}

// Framing and connection semantics from the headers (RFC 9112 6, 9.3).
Parse apply_headers(const ParseLimits& limits, Request& req, Error& err) {
  int hosts = 0, lengths = 0;
  bool chunked = false;
  req.keep_alive = req.version == "HTTP/1.1";
  for (const auto& [name, value] : req.headers) {
    if (name == "host") ++hosts;
    if (name == "transfer-encoding") chunked = true;
    if (name == "content-length") {
      ++lengths;
      if (value.empty() || value.size() > 15 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return error(err, 400, "Content-Length '" + shown(value) + "' is not a byte count");
      req.content_length = std::stoull(value);
    }
    if (name == "connection") {
      std::string v = lowered(value);
      if (v.find("close") != v.npos)
        req.keep_alive = false;
      else if (v.find("keep-alive") != v.npos)
        req.keep_alive = true;
    }
    if (name == "expect") {
      if (!iequals(value, "100-continue"))
        return error(err, 417, "unsupported Expect '" + shown(value) + "'");
      req.expect_continue = true;
    }
  }
  if (hosts > 1 || (hosts == 0 && req.version == "HTTP/1.1"))
    return error(err, 400, "an HTTP/1.1 request needs exactly one Host header");
  if (lengths > 1) return error(err, 400, "more than one Content-Length header");
  if (chunked && lengths) return error(err, 400, "both Transfer-Encoding and Content-Length");
  if (chunked)
    return error(err, 501, "Transfer-Encoding is not supported: send a Content-Length body");
  if (req.content_length > limits.max_body_bytes)
    return error(err, 413,
                 "request body of " + std::to_string(req.content_length) +
                     " bytes exceeds the limit of " + std::to_string(limits.max_body_bytes));
  bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (has_body && !lengths) return error(err, 411, req.method + " needs a Content-Length");
  return Parse::kComplete;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      int hi = i + 2 < in.size() ? hex_digit(in[i + 1]) : -1;
      int lo = hi < 0 ? -1 : hex_digit(in[i + 2]);
      if (lo < 0) return false;
      out += char(hi * 16 + lo);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return true;
}

// The value of parameter `key` in "type; a=1; b="x"" (quotes removed), or "".
std::string header_param(std::string_view header, std::string_view key) {
  size_t pos = header.find(';');
  while (pos != header.npos) {
    size_t next = header.find(';', pos + 1);
    std::string_view item =
        trim(header.substr(pos + 1, next == header.npos ? header.npos : next - pos - 1));
    size_t eq = item.find('=');
    if (eq != item.npos && iequals(trim(item.substr(0, eq)), key)) {
      std::string_view v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = next;
  }
  return "";
}

// One part's headers ("Name: value" lines) into `part`.
void parse_part_headers(std::string_view head, FormPart& part) {
  while (!head.empty()) {
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head = eol == head.npos ? std::string_view() : head.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == line.npos) continue;
    std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-disposition")) {
      part.name = header_param(value, "name");
      part.filename = header_param(value, "filename");
    } else if (iequals(name, "content-type")) {
      part.content_type = std::string(value);
    }
  }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

const std::string* Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

Parse parse_head(std::string_view buf, const ParseLimits& limits, Request& req, Error& err,
                 size_t& head_bytes) {
  req = Request();
  size_t start = 0;  // RFC 9112 2.2: empty lines before the request line are ignored
  while (buf.substr(start, 2) == "\r\n" && start < limits.max_header_bytes) start += 2;
  size_t end = buf.find("\r\n\r\n", start);
  if (end == buf.npos || end + 4 - start > limits.max_header_bytes) {
    if (buf.size() - start >= limits.max_header_bytes)
      return error(err, 431,
                   "request headers exceed " + std::to_string(limits.max_header_bytes) + " bytes");
    // Refuse what cannot become a request (e.g. a TLS hello) without waiting for more bytes.
    std::string_view first = buf.substr(start, buf.find(' ', start) - start);
    if (!first.empty() && first != "\r" && !is_token(first.substr(0, 20)))
      return error(err, 400, "malformed request method '" + shown(first) + "'");
    return Parse::kIncomplete;
  }
  std::string_view head = buf.substr(start, end - start);
  for (size_t i = 0; i < head.size(); ++i)
    if ((head[i] == '\r') != (i + 1 < head.size() && head[i + 1] == '\n') ||
        (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')))
      return error(err, 400, "bare CR or LF in the request head (lines end with CRLF)");
  size_t eol = head.find("\r\n");
  if (parse_request_line(head.substr(0, eol), req, err) == Parse::kError) return Parse::kError;
  while (eol != head.npos) {
    size_t next = head.find("\r\n", eol + 2);
    std::string_view line = head.substr(eol + 2, next == head.npos ? head.npos : next - eol - 2);
    if (int(req.headers.size()) >= limits.max_headers)
      return error(err, 431, "more than " + std::to_string(limits.max_headers) + " headers");
    if (parse_header_line(line, req, err) == Parse::kError) return Parse::kError;
    eol = next;
  }
  if (apply_headers(limits, req, err) == Parse::kError) return Parse::kError;
  head_bytes = end + 4;
  return Parse::kComplete;
}

Parse parse_request(std::string_view buf, const ParseLimits& limits, Request& req, Error& err,
                    size_t& consumed) {
  size_t head = 0;
  Parse p = parse_head(buf, limits, req, err, head);
  if (p != Parse::kComplete) return p;
  if (buf.size() - head < req.content_length) return Parse::kIncomplete;
  req.body = std::string(buf.substr(head, req.content_length));
  consumed = head + req.content_length;
  return Parse::kComplete;
}

bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out,
                 Error& err) {
  out.clear();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == query.npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key, value;
    if (!percent_decode(item.substr(0, eq), key) ||
        !percent_decode(eq == item.npos ? "" : item.substr(eq + 1), value)) {
      error(err, 400, "malformed query: bad percent escape in '" + shown(item) + "'");
      return false;
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

bool is_multipart(std::string_view content_type) {
  std::string_view mp = "multipart/form-data";
  return content_type.size() >= mp.size() && iequals(content_type.substr(0, mp.size()), mp) &&
         (content_type.size() == mp.size() || content_type[mp.size()] == ';' ||
          content_type[mp.size()] == ' ');
}

bool parse_multipart(std::string_view body, std::string_view content_type,
                     std::vector<FormPart>& parts, Error& err) {
  parts.clear();
  auto bad = [&](const std::string& why) {
    error(err, 400, "malformed multipart body: " + why);
    return false;
  };
  std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 70) return bad("no valid boundary parameter");
  const std::string delim = "--" + boundary, next_delim = "\r\n" + delim;
  size_t pos = 0;
  if (body.substr(0, delim.size()) != delim) {  // a preamble first
    pos = body.find(next_delim);
    if (pos == body.npos) return bad("the boundary never occurs");
    pos += 2;
  }
  for (;;) {
    size_t p = pos + delim.size();
    if (body.substr(p, 2) == "--") return true;  // the close delimiter; the epilogue is ignored
    while (p < body.size() && (body[p] == ' ' || body[p] == '\t')) ++p;
    if (body.substr(p, 2) != "\r\n") return bad("no line end after a boundary");
    size_t head_end = body.substr(p, 4) == "\r\n\r\n" ? p : body.find("\r\n\r\n", p);
    if (head_end == body.npos) return bad("a part without a blank line after its headers");
    size_t data = head_end + 4, end = body.find(next_delim, data);
    if (end == body.npos) return bad("a part without a closing boundary");
    if (parts.size() >= 64) return bad("more than 64 parts");
    FormPart part;
    parse_part_headers(body.substr(p + 2, head_end > p ? head_end - p - 2 : 0), part);
    part.data = body.substr(data, end - data);
    parts.push_back(std::move(part));
    pos = end + 2;
  }
}

}  // namespace osprey::tools::http
