// Progress of a training epoch on stderr: a redrawn bar on a terminal, and without one (a batch
// job's log) a plain line every interval so that a long epoch still shows life.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace osprey::tools {

enum class ProgressMode { none, bar, lines };

// bar when stderr is a terminal, else lines when interval_s > 0; none when disabled.
ProgressMode progress_mode(bool enabled, double interval_s);

// "0:42", "12:05", "3:02:11".
std::string format_duration(double seconds);

class ProgressBar {
 public:
  // total: the epoch's steps; first: the step it starts from (a resumed epoch skips some).
  ProgressBar(std::string label, int64_t total, int64_t first, ProgressMode mode,
              double interval_s);
  // After step `done`, with `images` trained by all ranks since this bar started and the
  // epoch's running mean loss (negative: unknown on this rank, e.g. a first pipeline stage).
  void update(int64_t done, int64_t images, double loss);
  void finish();  // erases the bar

 private:
  std::string status(int64_t done, int64_t images, double loss, double elapsed) const;

  std::string label_;
  int64_t total_, first_;
  ProgressMode mode_;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace osprey::tools
