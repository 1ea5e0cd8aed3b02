// The HTTP/1.1 front end of `osprey serve`: one thread runs a non-blocking accept + epoll loop
// that reads every connection against deadlines (a request's whole head within
// header_timeout_s, its body within a time proportional to its size with a floor), within
// size limits and a budget of request bytes held across all connections, and hands complete
// requests to a handler. Slow clients therefore cost a file descriptor and their bytes, never a
// thread. Requests on one connection are answered one at a time, in order (pipelining: the
// next request is parsed once the previous answer is written).
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tools/http_parse.h"

namespace osprey::tools::http {

// Bytes that may be held at once (request bodies, decoded images), shared between threads.
class ByteBudget {
 public:
  explicit ByteBudget(size_t limit) : limit_(limit) {}
  bool try_acquire(size_t n);
  void release(size_t n) { used_ -= n; }
  size_t limit() const { return limit_; }
  size_t used() const { return used_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

// n bytes acquired from a budget, given back when the lease is destroyed.
class ByteLease {
 public:
  ByteLease() = default;
  ByteLease(ByteBudget* budget, size_t n) : budget_(budget), n_(n) {}
  ~ByteLease() { shrink_to(0); }
  ByteLease(ByteLease&& o) noexcept : budget_(o.budget_), n_(std::exchange(o.n_, 0)) {}
  ByteLease& operator=(ByteLease&& o) noexcept;
  ByteLease(const ByteLease&) = delete;
  ByteLease& operator=(const ByteLease&) = delete;
  size_t size() const { return n_; }
  bool grow(size_t n);  // false (nothing acquired) when the budget has no room
  void shrink_to(size_t n);
  ByteLease split(size_t n);  // moves n of the bytes into a new lease

 private:
  ByteBudget* budget_ = nullptr;
  size_t n_ = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this answer
};
// {"error": message}; a 503 also says Retry-After.
Response json_error(int status, const std::string& message);
// The bytes of an answer (HTTP/1.1; without the body for HEAD).
std::string serialize_response(const Response& r, bool head_only, bool keep_alive);

// Answers one request, from any thread; later calls for the same request are ignored.
using Reply = std::function<void(Response)>;
// Runs on the loop thread for each complete request and must not block: answer through reply
// (now or from another thread). `held` keeps the request's bytes in the budget until dropped.
using Handler = std::function<void(Request&& req, ByteLease held, Reply reply)>;

struct ServerLimits {
  ParseLimits parse;
  int max_connections = 512;                     // more are answered 503 and closed
  size_t max_buffered_bytes = size_t(64) << 20;  // request bytes held, all connections together
  double header_timeout_s = 5;  // from the connection (or the previous answer) to the blank line
  double body_timeout_floor_s = 10;  // a body gets max(floor, length / min rate)
  double body_min_bytes_per_s = 64 << 10;
  double processing_timeout_s = 30;  // from a complete request to its answer, else 503
  double write_timeout_s = 10;
  double linger_s = 2;  // after a closing answer, unread input is discarded this long
};

class Server {
 public:
  Server(ServerLimits limits, Handler handler);
  ~Server();
  // Listens on host:port exclusively (SO_REUSEADDR, never SO_REUSEPORT; port 0 picks a free
  // one) and returns the port; a port in use throws osprey::Error saying so.
  int bind(const std::string& host, int port);
  // Bound to a loopback address: only Host values naming loopback are accepted (else 421),
  // against DNS rebinding.
  bool loopback() const;
  void run();   // serves until stop()
  void stop();  // from any thread
  size_t buffered_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True for the Host values a loopback-bound server accepts: localhost, 127.0.0.1 or [::1],
// each with or without ":port".
bool loopback_host(std::string_view host);

}  // namespace osprey::tools::http
