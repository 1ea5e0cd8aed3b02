#include "tools/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "kernels/error.h"

namespace osprey::tools::http {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kListenId = 0, kWakeId = 1;
constexpr size_t kHeadChunk = 16 << 10, kBodyChunk = 256 << 10;

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::microseconds(int64_t(seconds * 1e6));
}
std::string seconds(double s) {
  std::ostringstream os;
  os << s << " s";
  return os.str();
}

// What a connection is doing; one request at a time.
enum class State { kHead, kBody, kBusy, kWrite, kLinger };

struct Conn {
  int fd = -1;
  uint64_t id = 0;
  State state = State::kHead;
  std::string in;  // received, not yet consumed; in_held.size() == in.size()
  ByteLease in_held;
  std::string out;
  size_t out_done = 0;
  Request req;
  size_t head_bytes = 0;
  uint64_t seq = 0;  // the request being answered, to match late replies
  bool head_only = false, keep_alive = true, close_after = false, got_bytes = false;
  uint32_t events = 0;
  Clock::time_point deadline;
};

struct Completion {
  uint64_t id, seq;
  Response response;
};

// What replies need after the loop may be gone: the completion queue and the wake-up fd.
struct Mailbox {
  std::mutex mu;
  std::vector<Completion> done;
  int wake_fd = -1;
  ~Mailbox() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void post(Completion c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      done.push_back(std::move(c));
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }
};

std::string bind_error(int err) {
  if (err == EADDRINUSE) return "address already in use (is another server on that port?)";
  if (err == EACCES) return "permission denied (ports below 1024 need privileges)";
  return std::strerror(err);
}

bool is_loopback(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr) >> 24) == 127;
  if (a.ss_family != AF_INET6) return false;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

}  // namespace

struct Server::Impl {
  ServerLimits limits;
  Handler handler;
  ByteBudget buffered;
  std::shared_ptr<Mailbox> mail = std::make_shared<Mailbox>();
  int listen_fd = -1, epoll_fd = -1;
  bool loopback = false, accepting = true;
  std::atomic<bool> stopping{false};
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  uint64_t next_id = 2;

  Impl(ServerLimits l, Handler h)
      : limits(std::move(l)), handler(std::move(h)), buffered(limits.max_buffered_bytes) {
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    mail->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    OSPREY_CHECK(epoll_fd >= 0 && mail->wake_fd >= 0,
                 "serve: epoll/eventfd: ", std::strerror(errno));
    watch(mail->wake_fd, kWakeId, EPOLLIN, EPOLL_CTL_ADD);
  }
  ~Impl() {
    while (!conns.empty()) close_conn(*conns.begin()->second);
    if (listen_fd >= 0) ::close(listen_fd);
    ::close(epoll_fd);
  }
  void watch(int fd, uint64_t id, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    ::epoll_ctl(epoll_fd, op, fd, &ev);
  }
  void set_events(Conn& c, uint32_t events) {
    if (c.events != events) watch(c.fd, c.id, events, EPOLL_CTL_MOD);
    c.events = events;
  }
  void close_conn(Conn& c) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    conns.erase(c.id);  // destroys c
  }

  void accept_all();
  void on_readable(Conn& c);
  void advance(Conn& c);
  void dispatch(Conn& c);
  void respond(Conn& c, const Response& r);
  void flush(Conn& c);
  void next_request(Conn& c);
  void deliver();
  void sweep();
  void run();
};

void Server::Impl::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {  // out of descriptors: pause until the sweep
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
        accepting = false;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    if (int(conns.size()) >= limits.max_connections) {
      std::string busy = serialize_response(json_error(503, "too many connections"), false, false);
      [[maybe_unused]] ssize_t n = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    conn->id = next_id++;
    conn->in_held = ByteLease(&buffered, 0);
    conn->deadline = after(limits.header_timeout_s);
    conn->events = EPOLLIN;
    watch(fd, conn->id, EPOLLIN, EPOLL_CTL_ADD);
    conns.emplace(conn->id, std::move(conn));
  }
}

void Server::Impl::on_readable(Conn& c) {
  if (c.state == State::kLinger) {  // discard until the peer is done or the linger ends
    char sink[16 << 10];
    ssize_t n = 1;
    for (int i = 0; i < 64 && n > 0; ++i) n = ::recv(c.fd, sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_conn(c);
    return;
  }
  if (c.state != State::kHead && c.state != State::kBody) return;
  size_t want = kHeadChunk;
  if (c.state == State::kBody)
    want = std::min(kBodyChunk, c.head_bytes + c.req.content_length - c.in.size());
  if (!c.in_held.grow(want)) {
    Response r = json_error(503, "server busy: too many request bytes in flight");
    r.close = true;  // the rest of the request stays unread
    return respond(c, r);
  }
  size_t old = c.in.size();
  c.in.resize(old + want);
  ssize_t n = ::recv(c.fd, &c.in[old], want, 0);
  c.in.resize(old + size_t(std::max<ssize_t>(n, 0)));
  c.in_held.shrink_to(c.in.size());
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close_conn(c);
  if (n > 0) c.got_bytes = true, advance(c);
}

void Server::Impl::advance(Conn& c) {
  if (c.state == State::kHead) {
    Error err;
    Parse p = parse_head(c.in, limits.parse, c.req, err, c.head_bytes);
    if (p == Parse::kIncomplete) return;
    c.head_only = c.req.method == "HEAD";
    c.keep_alive = c.req.keep_alive;
    if (p == Parse::kError) {
      Response r = json_error(err.status, err.message);
      r.close = true;  // the framing cannot be trusted any more
      return respond(c, r);
    }
    const std::string* host = c.req.header("host");
    if (loopback && host && !loopback_host(*host)) {
      Response r = json_error(421, "Host '" + *host +
                                       "' refused: this server is bound to loopback and "
                                       "answers only localhost, 127.0.0.1 or [::1]");
      r.close = true;
      return respond(c, r);
    }
    c.state = State::kBody;
    double rate_s = double(c.req.content_length) / limits.body_min_bytes_per_s;
    c.deadline = after(std::max(limits.body_timeout_floor_s, rate_s));
    c.in.reserve(c.head_bytes + c.req.content_length);
    if (c.req.expect_continue && c.in.size() < c.head_bytes + c.req.content_length) {
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      flush(c);
      return;
    }
  }
  if (c.state == State::kBody && c.in.size() >= c.head_bytes + c.req.content_length) dispatch(c);
}

void Server::Impl::dispatch(Conn& c) {
  size_t n = c.req.content_length;
  c.in.erase(0, c.head_bytes);
  if (c.in.size() == n) {
    c.req.body = std::move(c.in);
    c.in = std::string();
  } else {  // pipelined bytes follow the body
    c.req.body = c.in.substr(0, n);
    c.in.erase(0, n);
  }
  ByteLease held = c.in_held.split(n);
  c.in_held.shrink_to(c.in.size());
  c.state = State::kBusy;
  c.deadline = after(limits.processing_timeout_s);
  set_events(c, 0);
  uint64_t id = c.id, seq = ++c.seq;
  std::weak_ptr<Mailbox> mail_ref = mail;
  Reply reply = [mail_ref, id, seq](Response r) {
    if (auto m = mail_ref.lock()) m->post({id, seq, std::move(r)});
  };
  try {
    handler(std::move(c.req), std::move(held), reply);
  } catch (const std::exception& e) {
    reply(json_error(500, e.what()));
  }
}

void Server::Impl::respond(Conn& c, const Response& r) {
  c.close_after = r.close || !c.keep_alive;
  c.out += serialize_response(r, c.head_only, !c.close_after);
  c.state = State::kWrite;
  c.deadline = after(limits.write_timeout_s);
  flush(c);
}

// Writes what is pending; the connection may be closed on return.
void Server::Impl::flush(Conn& c) {
  while (c.out_done < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_done, c.out.size() - c.out_done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      set_events(c, (c.state == State::kBody ? uint32_t(EPOLLIN) : 0u) | EPOLLOUT);
      return;
    }
    if (n < 0) return close_conn(c);
    c.out_done += size_t(n);
  }
  c.out.clear();
  c.out_done = 0;
  if (c.state == State::kBody) return set_events(c, EPOLLIN);  // the 100 Continue went out
  if (c.state != State::kWrite) return;
  if (c.close_after) {
    ::shutdown(c.fd, SHUT_WR);
    c.state = State::kLinger;
    c.deadline = after(limits.linger_s);
    c.in.clear();
    c.in_held.shrink_to(0);
    return set_events(c, EPOLLIN);
  }
  next_request(c);
}

void Server::Impl::next_request(Conn& c) {
  c.state = State::kHead;
  c.req = Request();
  c.got_bytes = !c.in.empty();
  c.deadline = after(limits.header_timeout_s);
  set_events(c, EPOLLIN);
  if (!c.in.empty()) advance(c);  // a pipelined request already arrived
}

void Server::Impl::deliver() {
  uint64_t count;
  while (::read(mail->wake_fd, &count, sizeof count) > 0) {
  }
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> lock(mail->mu);
    done.swap(mail->done);
  }
  for (Completion& d : done) {
    auto it = conns.find(d.id);
    if (it == conns.end()) continue;
    Conn& c = *it->second;
    if (c.state == State::kBusy && c.seq == d.seq) respond(c, d.response);
  }
}

void Server::Impl::sweep() {
  if (!accepting) {
    watch(listen_fd, kListenId, EPOLLIN, EPOLL_CTL_ADD);
    accepting = true;
  }
  auto now = Clock::now();
  std::vector<uint64_t> late;
  for (auto& [id, c] : conns)
    if (now > c->deadline) late.push_back(id);
  for (uint64_t id : late) {
    Conn& c = *conns.at(id);
    if (c.state == State::kHead && c.got_bytes) {
      Response r = json_error(
          408, "request headers not complete within " + seconds(limits.header_timeout_s));
      r.close = true;
      respond(c, r);
    } else if (c.state == State::kBody) {
      Response r = json_error(408, "request body not complete in time");
      r.close = true;
      respond(c, r);
    } else if (c.state == State::kBusy) {
      respond(c, json_error(
                     503, "server busy: no answer within " + seconds(limits.processing_timeout_s)));
    } else {
      close_conn(c);  // idle, not reading our answer, or done lingering
    }
  }
}

void Server::Impl::run() {
  watch(listen_fd, kListenId, EPOLLIN, EPOLL_CTL_ADD);
  auto last_sweep = Clock::now();
  epoll_event events[64];
  while (!stopping) {
    int n = ::epoll_wait(epoll_fd, events, 64, 100);
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kListenId) {
        accept_all();
        continue;
      }
      if (id == kWakeId) continue;
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      uint32_t ev = events[i].events;
      if (ev & (EPOLLHUP | EPOLLERR)) {  // reset, or both directions done: nobody to answer
        close_conn(c);
        continue;
      }
      if ((ev & EPOLLOUT) && !c.out.empty()) {
        flush(c);
        if (!conns.count(id)) continue;
      }
      if (ev & EPOLLIN) on_readable(c);
    }
    deliver();
    if (Clock::now() - last_sweep >= std::chrono::milliseconds(100)) {
      sweep();
      last_sweep = Clock::now();
    }
  }
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
}

Server::Server(ServerLimits limits, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler))) {}
Server::~Server() = default;

int Server::bind(const std::string& host, int port) {
  Impl& s = *impl_;
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  OSPREY_CHECK(rc == 0 && found, "serve: cannot listen on ", host, ":", port, ": ",
               ::gai_strerror(rc));
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, err = 0;
  // SO_REUSEADDR lets a restarted server bind past TIME_WAIT; SO_REUSEPORT is never set, so a
  // second server on a busy port fails instead of sharing its connections.
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 511) != 0)
    err = errno;
  ::freeaddrinfo(found);
  if (err) {
    if (fd >= 0) ::close(fd);
    fail("serve: cannot listen on ", host, ":", port, ": ", bind_error(err));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  s.listen_fd = fd;
  s.loopback = is_loopback(addr);
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(addr).sin_port);
}

bool Server::loopback() const {
  return impl_->loopback;
}
void Server::run() {
  OSPREY_CHECK(impl_->listen_fd >= 0, "serve: run() before bind()");
  impl_->run();
}
void Server::stop() {
  impl_->stopping = true;
  impl_->mail->post({0, 0, Response()});  // wakes the loop; id 0 matches no connection
}
size_t Server::buffered_bytes() const {
  return impl_->buffered.used();
}

}  // namespace osprey::tools::http
