// HTTP(S) downloads through libcurl that survive a dropped connection: bytes accumulate in a
// ".part" file and every new request asks only for the rest (an HTTP Range request), so a
// failed run resumes where it stopped when it is run again. Proxies come from the environment
// as libcurl reads it: http_proxy, https_proxy, all_proxy and no_proxy (lowercase http_proxy
// only, as curl does, since HTTP_PROXY can be set by a CGI request's Proxy header).
#pragma once
#include <cstdint>
#include <string>

namespace osprey::tools {

struct DownloadRequest {
  std::string url;             // http:// or https:// (redirects followed, to those only)
  std::string part_path;       // appended to; its existing bytes are the ones not asked for again
  std::string label;           // what the progress shows
  int64_t expected_size = -1;  // known size: a complete .part is not fetched again
  int attempts = 4;            // requests in all, each resuming after a dropped connection
  double retry_wait_s = 1.0;   // before a resumed request, times the attempt number
};

// A download whose size is not known (tmnist, --sha256) stops past this; one whose size is
// known, past that size. Either way the .part is deleted: a server that sends more than the
// file would otherwise fill the disk.
constexpr int64_t kMaxDownloadBytes = int64_t(16) << 30;

// Fetches the rest of the URL into part_path. A connection lost halfway is resumed up to
// `attempts` times; a server that ignores Range makes it start the file over. Anything else
// (an HTTP error status, a name that does not resolve, a full disk) throws osprey::Error with
// the URL and the cause; what was fetched stays in part_path for the next run to resume.
void download(const DownloadRequest& request);

}  // namespace osprey::tools
