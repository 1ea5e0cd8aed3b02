#include "tools/download.h"

#include <curl/curl.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/parse.h"
#include "kernels/error.h"
#include "tools/progress.h"

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kLineIntervalS = 10.0;  // without a terminal: a progress line this often
constexpr size_t kBarWidth = 24;

// "545 bytes", "12.3 kB", "170.1 MB".
std::string amount(int64_t bytes) {
  char text[32];
  if (bytes < 1000)
    std::snprintf(text, sizeof text, "%lld bytes", (long long)bytes);
  else if (bytes < 1000000)
    std::snprintf(text, sizeof text, "%.1f kB", double(bytes) / 1e3);
  else
    std::snprintf(text, sizeof text, "%.1f MB", double(bytes) / 1e6);
  return text;
}

// A redrawn bar on a terminal, a line every kLineIntervalS otherwise (a batch job's log).
class DownloadProgress {
 public:
  DownloadProgress(std::string label, int64_t offset)
      : label_(std::move(label)),
        offset_(offset),
        mode_(progress_mode(true, kLineIntervalS)),
        start_(Clock::now()),
        last_draw_(start_) {}
  ~DownloadProgress() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
  }

  // now/total: this request's bytes (total 0 while unknown).
  void update(int64_t now, int64_t total) {
    const auto t = Clock::now();
    const double since_draw = std::chrono::duration<double>(t - last_draw_).count();
    if (mode_ == ProgressMode::none ||
        since_draw < (mode_ == ProgressMode::bar ? 0.2 : kLineIntervalS))
      return;
    last_draw_ = t;
    const double elapsed = std::chrono::duration<double>(t - start_).count();
    const double rate = elapsed > 0 ? double(now) / elapsed : 0.0;
    const int64_t done = offset_ + now, all = total > 0 ? offset_ + total : -1;
    std::string text = label_ + "  " + amount(done);
    if (all > 0) {
      const double eta = rate > 0 ? double(all - done) / rate : NAN;
      char pct[96];
      std::snprintf(pct, sizeof pct, " of %s (%.0f%%)  eta %s", amount(all).c_str(),
                    100.0 * double(done) / double(all), format_duration(eta).c_str());
      text += pct;
    }
    text += "  " + amount(int64_t(rate)) + "/s";
    if (mode_ == ProgressMode::bar) {
      if (all > 0) {
        const size_t filled = size_t(kBarWidth * double(done) / double(all));
        text = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] " + text;
      }
      std::fprintf(stderr, "\r\033[K%s", text.c_str());
      drawn_ = true;
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
    }
    std::fflush(stderr);
  }

 private:
  std::string label_;
  int64_t offset_;
  ProgressMode mode_;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

struct Transfer {
  FILE* out = nullptr;
  bool write_failed = false;
  DownloadProgress* progress = nullptr;
  int64_t bytes = 0, limit = 0;  // in the file so far (the resumed part too), and at most
  bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  t->bytes += int64_t(bytes);
  if (t->bytes > t->limit) {
    t->too_large = true;
    return 0;  // stops the transfer: a server that sends more than the file would fill the disk
  }
  if (std::fwrite(data, 1, bytes, t->out) != bytes) {
    t->write_failed = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  return bytes;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  static_cast<Transfer*>(user)->progress->update(int64_t(dlnow), int64_t(dltotal));
  return 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    OSPREY_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "libcurl: cannot initialize");
  });
}

struct Outcome {
  CURLcode code = CURLE_OK;
  long status = 0;    // the HTTP status, 0 when none came
  std::string error;  // libcurl's message
  bool too_large = false;
};

// One GET of the URL from byte `offset` on, appended to the open file.
Outcome request(const DownloadRequest& r, FILE* out, int64_t offset) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  OSPREY_CHECK(curl, "libcurl: cannot create a transfer");
  CURL* c = curl.get();
  char error[CURL_ERROR_SIZE] = "";
  DownloadProgress progress(r.label, offset);
  Transfer t{out, false, &progress, offset,
             r.expected_size >= 0 ? r.expected_size : kMaxDownloadBytes};
  curl_easy_setopt(c, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "osprey-data-get");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled connection (under 1 byte/s for a minute) is dropped and resumed.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, curl_off_t(offset));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  Outcome o;
  o.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o.status);
  o.error = error[0] ? error : curl_easy_strerror(o.code);
  if (t.write_failed) o.error = std::string("cannot write: ") + std::strerror(errno);
  o.too_large = t.too_large;
  return o;
}

// A connection that broke or stalled: worth resuming. Everything else will fail the same way.
bool resumable(CURLcode code) {
  return code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
         code == CURLE_OPERATION_TIMEDOUT || code == CURLE_GOT_NOTHING ||
         code == CURLE_HTTP2_STREAM || code == CURLE_HTTP2;
}

int64_t size_of(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : int64_t(n);
}

}  // namespace

void download(const DownloadRequest& r) {
  global_init();
  const std::string url = printable(r.url);
  std::string last;
  for (int attempt = 1; attempt <= r.attempts; ++attempt) {
    int64_t offset = size_of(r.part_path);
    if (r.expected_size >= 0 && offset == r.expected_size) return;
    if (r.expected_size >= 0 && offset > r.expected_size) {
      fs::remove(r.part_path);  // longer than the file: not a prefix of it
      offset = 0;
    }
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(r.part_path.c_str(), offset ? "ab" : "wb"),
                                              std::fclose);
    if (!out) fail("cannot write ", printable(r.part_path), ": ", std::strerror(errno));
    const Outcome o = request(r, out.get(), offset);
    if (std::fclose(out.release()) != 0 && o.code == CURLE_OK)
      fail("cannot write ", printable(r.part_path), ": ", std::strerror(errno));
    if (o.code == CURLE_OK) return;
    if (o.too_large) {
      fs::remove(r.part_path);
      fail("download of ", url, " sent more than ",
           r.expected_size >= 0 ? "the file's " + std::to_string(r.expected_size) + " bytes"
                                : amount(kMaxDownloadBytes),
           "; stopped, the download was deleted");
    }
    if (o.code == CURLE_RANGE_ERROR) {
      std::fprintf(stderr, "%s: the server does not resume downloads; starting over\n",
                   r.label.c_str());
      fs::remove(r.part_path);
      continue;
    }
    if (o.code == CURLE_HTTP_RETURNED_ERROR)
      fail("download of ", url, " failed: HTTP status ", o.status);
    if (!resumable(o.code)) fail("download of ", url, " failed: ", o.error);
    last = o.error;
    if (attempt < r.attempts) {
      std::fprintf(stderr, "%s: connection lost after %s (%s); resuming (attempt %d of %d)\n",
                   r.label.c_str(), amount(size_of(r.part_path)).c_str(), last.c_str(), attempt + 1,
                   r.attempts);
      std::this_thread::sleep_for(std::chrono::duration<double>(r.retry_wait_s * attempt));
    }
  }
  fail("download of ", url, " failed after ", r.attempts, " attempts: ", last, "; the ",
       size_of(r.part_path), " bytes so far are kept in ", printable(r.part_path),
       ": run the same command again to resume");
}

}  // namespace osprey::tools
