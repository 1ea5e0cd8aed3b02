// The parts of the front end that are not the event loop: byte budgets, answers, the Host check.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "tools/http_server.h"

namespace osprey::tools::http {

bool ByteBudget::try_acquire(size_t n) {
  size_t cur = used_.load();
  do {
    if (n > limit_ || cur > limit_ - n) return false;
  } while (!used_.compare_exchange_weak(cur, cur + n));
  return true;
}

ByteLease& ByteLease::operator=(ByteLease&& o) noexcept {
  if (this != &o) {
    shrink_to(0);
    budget_ = o.budget_;
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}
bool ByteLease::grow(size_t n) {
  if (!budget_ || !budget_->try_acquire(n)) return false;
  n_ += n;
  return true;
}
void ByteLease::shrink_to(size_t n) {
  if (n >= n_) return;
  budget_->release(n_ - n);
  n_ = n;
}
ByteLease ByteLease::split(size_t n) {
  n = std::min(n, n_);
  n_ -= n;
  return ByteLease(budget_, n);
}

Response json_error(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

bool loopback_host(std::string_view host) {
  std::string_view name = host, port;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    if (close == host.npos) return false;
    name = host.substr(0, close + 1), port = host.substr(close + 1);
  } else if (size_t colon = host.rfind(':'); colon != host.npos) {
    name = host.substr(0, colon), port = host.substr(colon);
  }
  if (!port.empty() &&
      (port.size() < 2 || port.size() > 6 || port[0] != ':' ||
       !std::all_of(port.begin() + 1, port.end(), [](char c) { return c >= '0' && c <= '9'; })))
    return false;
  return iequals(name, "localhost") || name == "127.0.0.1" || name == "[::1]";
}

namespace {

const char* reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace

std::string serialize_response(const Response& r, bool head_only, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

}  // namespace osprey::tools::http
