// `osprey serve` against a server the test starts on a free loopback port: the page, the model
// description, predictions that agree with `osprey predict`, every kind of bad input (a 4xx
// with a JSON error, the server still healthy), concurrent requests, strict query parameters,
// no paths in answers and the Host check of a loopback server.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/image_support.h"
#include "tests/test_app_http_support.h"

using namespace osprey;
using json = nlohmann::json;

namespace {

// Class k is a bright square in quadrant k: one of class 3 at 48x48 (resized by the server).
std::string class3_png() {
  std::vector<uint8_t> img(48 * 48, 20);
  for (int y = 30; y < 42; ++y)
    for (int x = 30; x < 42; ++x) img[size_t(y * 48 + x)] = 250;
  return tests::png_bytes(img, 48, 48, 1);
}

std::string percent_encoded(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%%%02X", c);
    out += std::isalnum(c) ? std::string(1, char(c)) : std::string(hex);
  }
  return out;
}

void expect_error(const tests::HttpReply& r, int status, const std::string& words) {
  INFO(r.head << "\n\n" << r.body);
  REQUIRE(r.status == status);
  REQUIRE(json::parse(r.body)["error"].get<std::string>().find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("the inference server answers the page, the API and bad input") {
  tools::TrainedModel& tm = tests::served_model();
  tests::RunningServer running(tests::small_limits());
  tools::ServeOptions opts = tests::small_limits();
  const int port = running.port;

  auto page = tests::http_call(port, "GET", "/");
  REQUIRE(page.status == 200);
  REQUIRE(page.body.find("/api/predict") != std::string::npos);
  REQUIRE(page.body.find("http") == std::string::npos);  // nothing loads from the network

  auto model = tests::http_call(port, "GET", "/api/model");
  REQUIRE(model.status == 200);
  json m = json::parse(model.body);
  REQUIRE(m["name"] == "simple_cnn");
  REQUIRE(m["classes"] == 4);
  REQUIRE(m["input"] == json::array({12, 12, 1}));
  REQUIRE(m["limits"]["request_memory_bytes"] == tools::request_memory_bound(opts));

  std::string png = class3_png();
  auto pred = tests::http_call(port, "POST", "/api/predict?k=2", png, "image/png");
  REQUIRE(pred.status == 200);
  json p = json::parse(pred.body);
  REQUIRE(p["top"].size() == 2);
  REQUIRE(p["top"][0]["index"] == 3);
  data::Image decoded = data::decode_image(png.data(), png.size(), 1, "png");
  auto direct = tools::predict_images(tm, {decoded}, 2, 0.5f);
  REQUIRE(p["top"][0]["probability"].get<double>() ==
          Approx(direct[0].top[0].second).epsilon(1e-5));

  std::string form_type, form = tests::form_data("image", png, form_type);
  auto multipart = tests::http_call(port, "POST", "/api/predict", form, form_type);
  REQUIRE(multipart.status == 200);
  REQUIRE(json::parse(multipart.body)["top"].size() == 3);

  expect_error(tests::http_call(port, "POST", "/api/predict", "", "image/png"), 400, "empty");
  expect_error(tests::http_call(port, "POST", "/api/predict", "hello, not an image", "text/plain"),
               400, "not a readable image");
  expect_error(
      tests::http_call(port, "POST", "/api/predict", png.substr(0, png.size() / 2), "image/png"),
      400, "image");
  expect_error(tests::http_call(port, "POST", "/api/predict?k=9", png, "image/png"), 400, "k");
  std::string wrong = tests::form_data("file", png, form_type);
  expect_error(tests::http_call(port, "POST", "/api/predict", wrong, form_type), 400,
               "'image' field");
  std::vector<uint8_t> big(2100 * 10, 0);
  expect_error(tests::http_call(port, "POST", "/api/predict", tests::png_bytes(big, 10, 2100, 1),
                                "image/png"),
               413, "exceeds");
  expect_error(
      tests::http_call(port, "POST", "/api/predict", std::string(2 << 20, 'x'), "image/png"), 413,
      "exceeds the limit");
  expect_error(tests::http_call(port, "GET", "/nowhere"), 404, "no such path");
  expect_error(tests::http_call(port, "POST", "/api/health", "x", "text/plain"), 405,
               "not allowed");

  // Concurrent clients are batched and all answered.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = tests::http_call(port, "POST", "/api/predict", png, "image/png");
        if (r.status == 200 && json::parse(r.body)["top"][0]["index"] == 3) ++ok;
      }
    });
  for (auto& c : clients) c.join();
  REQUIRE(ok == 80);
  auto health = tests::http_call(port, "GET", "/api/health");
  REQUIRE(health.status == 200);
}

// Regression: "?k=3abc" was read as 3 and "?k=1e3" as 1 (std::stoi).
TEST_CASE("serve reads k strictly: the whole value an integer in [1, classes]") {
  tests::RunningServer running(tests::small_limits());
  const int port = running.port;
  std::string png = class3_png();
  for (const char* bad : {"3abc", "1e3", "0", "5", "-1", "+2", " 2", "", "2.0", "99999999999"}) {
    INFO(bad);
    std::string query = "/api/predict?k=" + percent_encoded(bad);
    expect_error(tests::http_call(port, "POST", query, png, "image/png"), 400,
                 "query parameter k: '" + std::string(bad) + "' is not an integer in [1, 4]");
  }
  expect_error(tests::http_call(port, "POST", "/api/predict?k=2&k=3", png, "image/png"), 400,
               "more than once");
  expect_error(tests::http_call(port, "POST", "/api/predict?k=%zz", png, "image/png"), 400,
               "percent escape");
  auto two = tests::http_call(port, "POST", "/api/predict?k=%32", png,
                              "image/png");  // "2", percent-encoded
  REQUIRE(two.status == 200);
  REQUIRE(json::parse(two.body)["top"].size() == 2);
}

// Regression: /api/model answered the checkpoint's absolute path.
TEST_CASE("serve answers no absolute paths, only the checkpoint's file name") {
  tools::TrainedModel& tm = tests::served_model();
  REQUIRE(std::filesystem::path(tm.checkpoint).is_absolute());
  tests::RunningServer running(tests::small_limits());
  const int port = running.port;
  std::string dir = std::filesystem::path(tm.checkpoint).parent_path().string();
  auto model = tests::http_call(port, "GET", "/api/model");
  REQUIRE(model.status == 200);
  REQUIRE(json::parse(model.body)["checkpoint"] ==
          std::filesystem::path(tm.checkpoint).filename().string());
  std::string png = class3_png();
  std::vector<std::string> bodies = {model.body};
  for (const char* path : {"/", "/api/health", "/x"})
    bodies.push_back(tests::http_call(port, "GET", path).body);
  for (const std::string& upload : {png, std::string("junk")})
    bodies.push_back(tests::http_call(port, "POST", "/api/predict", upload, "image/png").body);
  for (const std::string& body : bodies) {
    INFO(body);
    REQUIRE(body.find(dir) == std::string::npos);
    REQUIRE(body.find(std::filesystem::temp_directory_path().string()) == std::string::npos);
  }
}

// Regression: the Host header was not checked (DNS rebinding against a loopback server).
TEST_CASE("a loopback server accepts only loopback Host names") {
  tests::RunningServer running(tests::small_limits());
  std::string port = std::to_string(running.port);
  for (const std::string& host :
       std::vector<std::string>{"localhost", "127.0.0.1", "[::1]", "LOCALHOST:" + port,
                                "127.0.0.1:" + port, "[::1]:" + port, "localhost:9000"}) {
    INFO(host);
    std::string r = tests::exchange(running.port, "GET /api/health HTTP/1.1\r\nHost: " + host +
                                                      "\r\nConnection: close\r\n\r\n");
    REQUIRE(tests::status_line(r) == "HTTP/1.1 200 OK");
  }
  for (const std::string& host : std::vector<std::string>{
           "evil.example", "evil.example:" + port, "127.0.0.2", "localhost.evil.example",
           "localhost:", "localhost:80x", "[::1", "0.0.0.0:" + port}) {
    INFO(host);
    std::string r = tests::exchange(running.port, "GET /api/health HTTP/1.1\r\nHost: " + host +
                                                      "\r\nConnection: close\r\n\r\n");
    REQUIRE(tests::status_line(r) == "HTTP/1.1 421 Misdirected Request");
    json e = json::parse(r.substr(r.find("\r\n\r\n") + 4));
    REQUIRE(e["error"].get<std::string>().find("bound to loopback") != std::string::npos);
  }
  // HTTP/1.1 needs a Host; HTTP/1.0 may go without.
  REQUIRE(tests::status_line(tests::exchange(running.port, "GET /api/health HTTP/1.1\r\n\r\n")) ==
          "HTTP/1.1 400 Bad Request");
  REQUIRE(tests::status_line(tests::exchange(running.port, "GET /api/health HTTP/1.0\r\n\r\n")) ==
          "HTTP/1.1 200 OK");
}
