#include "tools/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace osprey::tools {

ProgressMode progress_mode(bool enabled, double interval_s) {
  if (!enabled) return ProgressMode::none;
  if (::isatty(2)) return ProgressMode::bar;
  return interval_s > 0 ? ProgressMode::lines : ProgressMode::none;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = (long long)std::llround(seconds);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", s / 60, s % 60);
  return text;
}

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t first, ProgressMode mode,
                         double interval_s)
    : label_(std::move(label)),
      total_(total),
      first_(first),
      mode_(total > 0 ? mode : ProgressMode::none),
      interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

// "loss 0.4123  1234 images/s  elapsed 0:42  eta 1:10"
std::string ProgressBar::status(int64_t done, int64_t images, double loss, double elapsed) const {
  char text[160];
  int n = 0;
  if (loss >= 0) n += std::snprintf(text + n, sizeof text - size_t(n), "loss %.4f  ", loss);
  const double rate = elapsed > 0 ? double(images) / elapsed : 0.0;
  const int64_t steps = done - first_;
  const double eta = steps > 0 ? elapsed / double(steps) * double(total_ - done) : NAN;
  std::snprintf(text + n, sizeof text - size_t(n), "%.0f images/s  elapsed %s  eta %s", rate,
                format_duration(elapsed).c_str(), format_duration(eta).c_str());
  return text;
}

void ProgressBar::update(int64_t done, int64_t images, double loss) {
  if (mode_ == ProgressMode::none) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (mode_ == ProgressMode::lines) {
    if (since_draw < interval_s_) return;
    last_draw_ = now;
    std::fprintf(stderr, "%s step %lld/%lld (%.0f%%)  %s\n", label_.c_str(), (long long)done,
                 (long long)total_, 100.0 * double(done) / double(total_),
                 status(done, images, loss, elapsed).c_str());
    std::fflush(stderr);
    return;
  }
  if (done < total_ && since_draw < 0.1) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  const int filled = int(kWidth * done / total_);
  std::string bar(size_t(filled), '#');
  bar.append(size_t(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %s\033[K", label_.c_str(), bar.c_str(),
               (long long)done, (long long)total_, status(done, images, loss, elapsed).c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (mode_ != ProgressMode::bar) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace osprey::tools
