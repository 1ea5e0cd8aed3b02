// The pure HTTP/1.1 request parser of `osprey serve` (tools/http_parse.h): framing, limits,
// every refusal with its status, the query and multipart/form-data.
#include <catch2/catch.hpp>

#include "tools/http_parse.h"

using namespace osprey::tools::http;

namespace {

Error parse_error(const std::string& bytes, ParseLimits limits = {}) {
  Request req;
  Error err;
  size_t consumed = 0;
  Parse p = parse_request(bytes, limits, req, err, consumed);
  INFO(bytes);
  REQUIRE(p == Parse::kError);
  return err;
}

}  // namespace

TEST_CASE("http: a request, byte by byte, then pipelined after another") {
  const std::string one =
      "\r\nPOST /api/predict?k=2&x=a%20b+c HTTP/1.1\r\nHost: localhost:8080\r\n"
      "Content-Type: image/png\r\nContent-Length: 5\r\nX-Empty:\r\n\r\nhello";
  const std::string two = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  Request req;
  Error err;
  size_t consumed = 0;
  for (size_t n = 0; n < one.size(); ++n)
    REQUIRE(parse_request(std::string_view(one).substr(0, n), {}, req, err, consumed) ==
            Parse::kIncomplete);
  std::string both = one + two;
  REQUIRE(parse_request(both, {}, req, err, consumed) == Parse::kComplete);
  REQUIRE(consumed == one.size());
  REQUIRE(req.method == "POST");
  REQUIRE(req.path == "/api/predict");
  REQUIRE(req.query == "k=2&x=a%20b+c");
  REQUIRE(*req.header("content-type") == "image/png");
  REQUIRE(*req.header("x-empty") == "");
  REQUIRE(req.body == "hello");
  REQUIRE(req.keep_alive);
  std::vector<std::pair<std::string, std::string>> q;
  REQUIRE(parse_query(req.query, q, err));
  REQUIRE(q == decltype(q){{"k", "2"}, {"x", "a b c"}});
  REQUIRE(parse_request(std::string_view(both).substr(consumed), {}, req, err, consumed) ==
          Parse::kComplete);
  REQUIRE(req.version == "HTTP/1.0");
  REQUIRE(req.keep_alive);
  REQUIRE(!req.header("host"));
}

TEST_CASE("http: each malformed or oversized request gets its status") {
  const std::string h = "Host: x\r\n";
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + std::string(9000, 'a')).status == 431);
  std::string many;
  for (int i = 0; i < 65; ++i) many += "A" + std::to_string(i) + ": 1\r\n";
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + many + "\r\n").status == 431);
  REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h + "Content-Length: 17\r\n\r\n", {8192, 64, 16})
              .status == 413);
  REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h + "\r\n").status == 411);
  REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n").status ==
          501);
  REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h +
                      "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
              .status == 400);
  for (const char* cl : {"3abc", "1e3", "-1", "+3", "", "0x10", "1 2", "99999999999999999"})
    REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h + "Content-Length: " + cl + "\r\n\r\n")
                .message.find("Content-Length") != std::string::npos);
  REQUIRE(parse_error("POST / HTTP/1.1\r\n" + h + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n")
              .status == 400);
  REQUIRE(parse_error("GET / HTTP/1.1\r\n\r\n").status == 400);               // no Host
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + h + "\r\n").status == 400);  // two
  REQUIRE(parse_error("GET / HTTP/2.0\r\n" + h + "\r\n").status == 505);
  REQUIRE(parse_error("GET / FTP/1.0\r\n" + h + "\r\n").status == 400);
  REQUIRE(parse_error("GET  / HTTP/1.1\r\n" + h + "\r\n").status == 400);
  REQUIRE(parse_error("GET http://x/ HTTP/1.1\r\n" + h + "\r\n").status == 400);
  REQUIRE(parse_error("GET /\x7f HTTP/1.1\r\n" + h + "\r\n").status == 400);
  REQUIRE(parse_error("GET / HTTP/1.1\n" + h + "\r\n\r\n").status == 400);              // bare LF
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + "A: b\rc\r\n\r\n").status == 400);     // bare CR
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + "A: b\r\n c\r\n\r\n").status == 400);  // fold
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + "A : b\r\n\r\n").status == 400);
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + "A: \x01\r\n\r\n").status == 400);
  REQUIRE(parse_error("GET / HTTP/1.1\r\n" + h + "Expect: 200-ok\r\n\r\n").status == 417);
  REQUIRE(parse_error(std::string("\x16\x03\x01\x00\xa5", 5)).status == 400);  // without waiting
}

TEST_CASE("http: query escapes and multipart bodies") {
  std::vector<std::pair<std::string, std::string>> q;
  Error err;
  REQUIRE(parse_query("a&&b=&=c&d=%41%2b", q, err));
  REQUIRE(q == decltype(q){{"a", ""}, {"b", ""}, {"", "c"}, {"d", "A+"}});
  for (const char* bad : {"k=%", "k=%4", "k=%zz", "%g1=2"}) {
    REQUIRE(!parse_query(bad, q, err));
    REQUIRE(err.status == 400);
  }
  const std::string type = "multipart/form-data; boundary=\"XyZ\"";
  REQUIRE(is_multipart(type));
  REQUIRE(!is_multipart("multipart/form-datax"));
  const std::string body =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
      "Content-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\nepilogue";
  std::vector<FormPart> parts;
  REQUIRE(parse_multipart(body, type, parts, err));
  REQUIRE(parts.size() == 2);
  REQUIRE(parts[0].name == "note");
  REQUIRE(parts[0].data == "hi");
  REQUIRE(parts[1].name == "image");
  REQUIRE(parts[1].filename == "a.png");
  REQUIRE(parts[1].content_type == "image/png");
  REQUIRE(parts[1].data == "\x89PNG\r\n--X");
  for (const std::string& bad :
       {std::string("no boundary at all"), body.substr(0, body.size() - 20),
        std::string("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nx"),
        std::string("--XyZ junk")}) {
    INFO(bad);
    REQUIRE(!parse_multipart(bad, type, parts, err));
    REQUIRE(err.status == 400);
  }
  REQUIRE(!parse_multipart(body, "multipart/form-data", parts, err));  // no boundary
}
