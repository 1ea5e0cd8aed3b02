// `osprey serve` against hostile clients, each case the regression test of an attack that
// worked on the former cpp-httplib server: slow clients holding every worker, two servers on one
// port, dropped pipelined requests, unbounded decoding memory; and the limits of the front end.
#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/test_app_http_support.h"

using namespace osprey;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string health_request(bool close) {
  return std::string("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

std::string predict_request(const std::string& image, int k, bool close) {
  return "POST /api/predict?k=" + std::to_string(k) +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: " +
         std::to_string(image.size()) + "\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n" +
         image;
}

// Opens a socket, sends `start`, then one byte every 100 ms until the server closes it;
// returns the seconds that took (or 30 when it never did) and what the server sent.
double trickle(int port, const std::string& start, char byte, std::string& answer) {
  tests::Socket s(port, 0.1);
  auto t0 = Clock::now();
  s.send(start);
  char buf[4096];
  while (seconds_since(t0) < 30) {
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return seconds_since(t0);
    if (n > 0) answer.append(buf, size_t(n));
    if (!s.send(std::string(1, byte))) return seconds_since(t0);
  }
  return 30;
}

// Statuses of `n` concurrent uploads of `image`; checks every 503 says Retry-After and why.
std::vector<int> concurrent_uploads(int port, const std::string& image, int n,
                                    std::vector<std::string>& busy_errors) {
  std::vector<int> status(size_t(n), 0);
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      auto r = tests::http_call(port, "POST", "/api/predict", image, "image/png", 60);
      status[size_t(i)] = r.status;
      if (r.status == 503 && r.header("Retry-After") == "1")
        errors[size_t(i)] = json::parse(r.body)["error"].get<std::string>();
    });
  for (auto& c : clients) c.join();
  for (int i = 0; i < n; ++i)
    if (status[size_t(i)] == 503) busy_errors.push_back(errors[size_t(i)]);
  return status;
}

bool healthy(int port) {
  return tests::http_call(port, "GET", "/api/health", "", "", 1.0).status == 200;
}

}  // namespace

// Regression: a second `osprey serve --port P` listened too (SO_REUSEPORT) and took half of
// the connections.
TEST_CASE("a second server on a busy port fails with 'address already in use'") {
  tests::RunningServer first(tests::small_limits());
  tools::ServeOptions opts = tests::small_limits();
  opts.port = first.port;
  tools::InferenceServer second(tests::served_model(), opts);
  REQUIRE_THROWS_WITH(second.bind(), Catch::Matchers::Contains("address already in use") &&
                                         Catch::Matchers::Contains(std::to_string(first.port)));
  REQUIRE(healthy(first.port));
}

// Regression: 8 sockets sending headers (or a body) a byte at a time held all 8 httplib
// workers; nothing else was answered.
TEST_CASE("slow clients are cut off by per-request deadlines and block nobody") {
  tools::ServeOptions opts = tests::small_limits();
  opts.header_timeout_s = 1;
  opts.body_timeout_floor_s = 1.5;
  tests::RunningServer running(opts);
  const std::string slow_body =
      "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000\r\n\r\n";
  std::vector<double> took(24);
  std::vector<std::string> answers(24);
  std::vector<std::thread> slow;
  for (int i = 0; i < 24; ++i)
    slow.emplace_back([&, i] {
      took[size_t(i)] =
          i % 2 ? trickle(running.port, slow_body, 'x', answers[size_t(i)])
                : trickle(running.port, "GET /api/health HTTP/1.1\r\n", 'X', answers[size_t(i)]);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int probes_ok = 0;
  for (int i = 0; i < 5; ++i) probes_ok += healthy(running.port);
  for (auto& t : slow) t.join();
  REQUIRE(probes_ok == 5);
  for (int i = 0; i < 24; ++i) {
    INFO(i << ": " << answers[size_t(i)]);
    REQUIRE(took[size_t(i)] < (i % 2 ? 1.5 : 1.0) + 2.5);
    REQUIRE(tests::status_line(answers[size_t(i)]) == "HTTP/1.1 408 Request Timeout");
  }
}

// Regression: of 6 pipelined requests only the first was answered; the rest were dropped.
TEST_CASE("pipelined requests are all answered, in order") {
  tests::RunningServer running(tests::small_limits());
  std::string png = tests::zlib_png(40, 40, 0, 8, 90), all;
  for (int i = 0; i < 6; ++i)
    all += i % 2 ? health_request(i == 5) : predict_request(png, 1 + i / 2, false);
  tests::Socket s(running.port);
  REQUIRE(s.send(all));
  std::string out;
  REQUIRE(s.read_to_close(out));
  size_t pos = 0;
  for (int i = 0; i < 6; ++i) {
    INFO(i << ": " << out);
    REQUIRE(out.compare(pos, 15, "HTTP/1.1 200 OK") == 0);
    size_t body = out.find("\r\n\r\n", pos) + 4;
    size_t length = std::stoul(out.substr(out.find("Content-Length: ", pos) + 16));
    json j = json::parse(out.substr(body, length));
    if (i % 2) REQUIRE(j == json{{"status", "ok"}});
    if (i % 2 == 0) REQUIRE(j["top"].size() == size_t(1 + i / 2));
    pos = body + length;
  }
  REQUIRE(pos == out.size());
  // After an answer that closes the connection, what followed it is not answered.
  std::string closing = tests::exchange(running.port, health_request(true) + health_request(false));
  REQUIRE(closing.find("HTTP/1.1", 1) == std::string::npos);
}

TEST_CASE("the front end refuses what it does not parse, with the status that says why") {
  tools::ServeOptions opts = tests::small_limits();
  tests::RunningServer running(opts);
  auto status_of = [&](const std::string& request) {
    return tests::status_line(tests::exchange(running.port, request));
  };
  const std::string get = "GET /api/health HTTP/1.1\r\nHost: localhost\r\n";
  REQUIRE(status_of(get + "X: " + std::string(9000, 'a') + "\r\n\r\n") ==
          "HTTP/1.1 431 Request Header Fields Too Large");
  std::string many;
  for (int i = 0; i < 70; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
  REQUIRE(status_of(get + many + "\r\n") == "HTTP/1.1 431 Request Header Fields Too Large");
  REQUIRE(status_of("POST /api/predict HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n") == "HTTP/1.1 501 Not Implemented");
  REQUIRE(status_of("POST /api/predict HTTP/1.1\r\nHost: localhost\r\n\r\n") ==
          "HTTP/1.1 411 Length Required");
  REQUIRE(
      status_of("POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3x\r\n\r\n") ==
      "HTTP/1.1 400 Bad Request");
  REQUIRE(status_of("GET /api/health HTTP/2.0\r\nHost: localhost\r\n\r\n") ==
          "HTTP/1.1 505 HTTP Version Not Supported");
  REQUIRE(status_of("GET /api/health HTTP/1.1\nHost: localhost\n\n\r\n\r\n") ==
          "HTTP/1.1 400 Bad Request");
  REQUIRE(status_of(get + "X: a\r\n b\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  REQUIRE(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") == "HTTP/1.1 400 Bad Request");
  // Too long a body is refused from its headers: nothing of it needs to arrive.
  tests::Socket s(running.port);
  s.send("POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n");
  std::string out;
  REQUIRE(s.read_to_close(out));
  REQUIRE(tests::status_line(out) == "HTTP/1.1 413 Content Too Large");
  // Expect: 100-continue is honoured.
  std::string png = tests::zlib_png(30, 30, 0, 8, 200);
  tests::Socket c(running.port);
  c.send(
      "POST /api/predict HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nConnection: "
      "close\r\nContent-Length: " +
      std::to_string(png.size()) + "\r\n\r\n");
  char buf[64] = {};
  REQUIRE(::recv(c.fd, buf, 25, MSG_WAITALL) == 25);
  REQUIRE(std::string(buf) == "HTTP/1.1 100 Continue\r\n\r\n");
  c.send(png);
  out.clear();
  c.read_to_close(out);
  REQUIRE(tests::status_line(out) == "HTTP/1.1 200 OK");
}

// Regression: ~2 MB of concurrent uploads of small PNGs that decode big drove the server to
// 2.5 GB: decodes and decoded bytes were not limited. The abuse test (tests/serve_abuse_test.py)
// measures the RSS; here, each limit answers 503.
TEST_CASE("a busy server answers 503 with Retry-After and a JSON error") {
  const std::string bomb = tests::zlib_png(2048, 2048, 6, 16, 0);  // 32 MiB of pixels
  REQUIRE(bomb.size() < 100000);
  tools::ServeOptions opts = tests::small_limits();
  std::string expected;
  SECTION("too many predictions waiting") {
    opts.decode_slots = 1, opts.max_queued = 1;
    opts.max_decoded_bytes = size_t(1) << 40;  // a count, not an allocation
    expected = "too many predictions waiting";
  }
  SECTION("too many images in flight") {
    opts.decode_slots = 4;
    opts.max_decoded_bytes = tools::kDecodeBytesPerPixel * 2048 * 2048 + bomb.size();
    expected = "too many images in flight";
  }
  SECTION("no answer within the processing deadline") {
    opts.decode_slots = 1, opts.processing_timeout_s = 0.2;
    opts.max_decoded_bytes = size_t(1) << 40;  // a count, not an allocation
    expected = "no answer within";
  }
  tests::RunningServer running(opts);
  std::vector<std::string> busy;
  std::vector<int> status = concurrent_uploads(running.port, bomb, 12, busy);
  INFO(expected);
  for (int s : status) REQUIRE((s == 200 || s == 503));
  REQUIRE(!busy.empty());
  for (const std::string& e : busy) REQUIRE_THAT(e, Catch::Matchers::Contains(expected));
  REQUIRE(healthy(running.port));
}

TEST_CASE("limits on images, request bytes and connections") {
  tools::ServeOptions opts = tests::small_limits();
  opts.max_decoded_bytes = 1 << 20;
  opts.max_buffered_bytes = 256 << 10;
  opts.max_connections = 6;
  tests::RunningServer running(opts);
  auto r = tests::http_call(running.port, "POST", "/api/predict",
                            tests::zlib_png(512, 512, 0, 8, 1), "image/png");
  REQUIRE(r.status == 413);
  REQUIRE_THAT(r.body, Catch::Matchers::Contains("more decoding memory than the server allows"));
  r = tests::http_call(running.port, "POST", "/api/predict", std::string(600 << 10, 'x'),
                       "image/png");
  REQUIRE(r.status == 503);
  REQUIRE_THAT(r.body, Catch::Matchers::Contains("request bytes in flight"));
  {
    std::vector<std::unique_ptr<tests::Socket>> idle;
    for (int i = 0; i < 6; ++i) idle.push_back(std::make_unique<tests::Socket>(running.port));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string out = tests::exchange(running.port, health_request(true));
    REQUIRE(tests::status_line(out) == "HTTP/1.1 503 Service Unavailable");
    REQUIRE_THAT(out, Catch::Matchers::Contains("too many connections"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(healthy(running.port));
}
