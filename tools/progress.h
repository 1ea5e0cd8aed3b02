// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace osprey::tools {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  // Redraws at most ~10 times a second.
  void update(int64_t done, const std::string& suffix);
  void finish();  // erases the bar

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace osprey::tools
