// Helpers of the `osprey serve` tests: one small trained model for the whole test binary, a
// server running on a free loopback port for the length of a scope, raw-socket exchanges (for
// what an HTTP client library will not send) and PNGs written with zlib.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "tests/test_support.h"
#include "tests/tiny_idx.h"
#include "tools/serve.h"
#include "tools/train.h"

namespace osprey::tests {

// simple_cnn trained for 2 epochs on the tiny 12x12, 4-class IDX set; trained once.
inline tools::TrainedModel& served_model() {
  static TempDir dir("osprey_serve");
  static tools::TrainedModel tm = [] {
    write_tiny_idx_split(dir.path, "train", 400, 1);
    write_tiny_idx_split(dir.path, "t10k", 40, 2);
    tools::TrainConfig cfg;
    cfg.name = "served";
    cfg.dataset = "mnist";
    cfg.data_dir = dir.path.string();
    cfg.runs_dir = (dir.path / "runs").string();
    cfg.epochs = 2, cfg.batch_size = 32, cfg.threads = 2, cfg.progress = false;
    cfg.mean = {0.2f}, cfg.std = {0.3f};
    tools::run_train(cfg);
    return tools::load_trained((dir.path / "runs" / "served").string(), {});
  }();
  return tm;
}

// The server of `opts` (port 0: a free one) serving on its own thread until destroyed.
struct RunningServer {
  tools::InferenceServer server;
  int port;
  std::thread thread;
  explicit RunningServer(tools::ServeOptions opts)
      : server(served_model(), (opts.port = 0, opts)),
        port(server.bind()),
        thread([this] { server.listen(); }) {}
  ~RunningServer() {
    server.stop();
    thread.join();
  }
};

inline tools::ServeOptions small_limits() {
  tools::ServeOptions o;
  o.max_body_bytes = 1 << 20;
  o.max_image_side = 2048;
  return o;
}

// A blocking loopback socket with a receive timeout (usable from any thread).
struct Socket {
  int fd = -1;
  explicit Socket(int port, double timeout_s = 10) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // No REQUIRE: Catch2's assertions are for the main thread; a failed connect shows as
    // failed sends and an empty answer, which the callers check.
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::close(fd), fd = -1;
    timeval tv{long(timeout_s), long((timeout_s - long(timeout_s)) * 1e6)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  bool send(const std::string& s) {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size());
  }
  // Everything until the peer closes (true) or the receive timeout passes (false).
  bool read_to_close(std::string& out) {
    char buf[16 << 10];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      out.append(buf, size_t(n));
    }
  }
};

// One request on a fresh connection that asks to be closed after the answer.
inline std::string exchange(int port, const std::string& request) {
  Socket s(port);
  s.send(request);
  std::string out;
  s.read_to_close(out);
  return out;
}

inline std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string head, body;
  // The value of header `name` (as the server spells it), or "".
  std::string header(const std::string& name) const {
    size_t at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

// One request on a fresh connection that the server closes after its answer (a client of our
// own: Debian's libcpp-httplib is built with OpenSSL, so its classes do not match its header).
inline HttpReply http_call(int port, const std::string& method, const std::string& target,
                           const std::string& body = "", const std::string& content_type = "",
                           double timeout_s = 10) {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty()) request += "Content-Type: " + content_type + "\r\n";
  if (method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  Socket s(port, timeout_s);
  HttpReply r;
  s.send(request + "Connection: close\r\n\r\n" + body);
  std::string out;
  s.read_to_close(out);
  size_t end = out.find("\r\n\r\n");
  if (out.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return r;
  r.status = std::stoi(out.substr(9, 3));
  r.head = out.substr(0, end);
  r.body = out.substr(end + 4);
  return r;
}

// A multipart/form-data body of one file field; content_type receives its Content-Type.
inline std::string form_data(const std::string& field, const std::string& data,
                             std::string& content_type) {
  const std::string boundary = "osprey-test-boundary-7d1f";
  content_type = "multipart/form-data; boundary=" + boundary;
  return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + field +
         "\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n" + data + "\r\n--" + boundary +
         "--\r\n";
}

// A PNG of w x h pixels, 8 bits per sample, of `color` (0 gray, 6 RGBA) or 16 bits when
// depth == 16, all of value `fill`: large images in few bytes.
inline std::string zlib_png(int w, int h, int color, int depth, uint8_t fill) {
  auto u32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  auto chunk = [&](const std::string& tag, const std::string& body) {
    std::string tb = tag + body;
    return u32(uint32_t(body.size())) + tb +
           u32(uint32_t(crc32(0, reinterpret_cast<const Bytef*>(tb.data()), uInt(tb.size()))));
  };
  size_t row = size_t(w) * (color == 6 ? 4 : 1) * size_t(depth / 8);
  std::string raw;
  raw.reserve((row + 1) * size_t(h));
  for (int y = 0; y < h; ++y) raw += '\0', raw.append(row, char(fill));
  uLongf packed_size = compressBound(uLong(raw.size()));
  std::string packed(packed_size, '\0');
  compress2(reinterpret_cast<Bytef*>(&packed[0]), &packed_size,
            reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 9);
  packed.resize(packed_size);
  std::string ihdr =
      u32(uint32_t(w)) + u32(uint32_t(h)) + std::string{char(depth), char(color), 0, 0, 0};
  return "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr) + chunk("IDAT", packed) + chunk("IEND", "");
}

}  // namespace osprey::tests
