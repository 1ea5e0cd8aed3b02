#include "tools/plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/parse.h"
#include "kernels/error.h"
#include "tools/stop_signal.h"

extern char** environ;

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kMaxEpoch = 10000000;

struct EpochPoint {
  int64_t epoch = 0;
  double train_loss = kMissing, test_loss = kMissing, train_acc = kMissing, test_acc = kMissing;
};

struct RunCurves {
  std::string name;
  std::vector<EpochPoint> epochs;  // ascending epoch
  bool has_train_acc = false;
};

// The metrics.jsonl of `run`: the run directory itself, else the run of that name in runs_dir.
std::string metrics_path_of(const std::string& run, const std::string& runs_dir) {
  const fs::path direct = fs::path(run) / "metrics.jsonl";
  if (fs::is_regular_file(direct)) return direct.string();
  const fs::path named = fs::path(runs_dir) / run / "metrics.jsonl";
  if (fs::is_regular_file(named)) return named.string();
  fail("run '", printable(run), "': no metrics.jsonl in '", printable(run), "' nor in '",
       printable(named.parent_path().string()), "'");
}

// The run's name for the legend: its directory's last component.
std::string display_name(const std::string& run) {
  std::string s = run;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  const std::string name = fs::path(s).filename().string();
  return name.empty() ? s : name;
}

double number_or_missing(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kMissing;
  const double v = it->get<double>();
  return std::isfinite(v) ? v : kMissing;
}

// One metrics.jsonl line, or false when it is not a complete epoch line (cut by a kill, not
// JSON, a field missing): such lines are skipped.
bool parse_epoch_line(const std::string& line, const std::string& what, EpochPoint& point,
                      bool& percent_format) {
  check_json_depth(line, what);
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto epoch = j.find("epoch");
  if (epoch == j.end() || !epoch->is_number_integer()) return false;
  point.epoch = epoch->get<int64_t>();
  point.train_loss = number_or_missing(j, "train_loss");
  point.test_loss = number_or_missing(j, "test_loss");
  point.test_acc = number_or_missing(j, "test_acc");
  point.train_acc = number_or_missing(j, "train_acc");
  if (j.contains("elapsed_s") || j.contains("train_acc")) percent_format = true;
  return point.epoch >= 1 && point.epoch <= kMaxEpoch && !std::isnan(point.train_loss) &&
         !std::isnan(point.test_loss) && !std::isnan(point.test_acc);
}

RunCurves read_run(const std::string& run, const std::string& runs_dir) {
  const std::string path = metrics_path_of(run, runs_dir);
  std::ifstream in(path);
  OSPREY_CHECK(in.good(), "run '", printable(run), "': cannot read '", printable(path), "'");
  std::map<int64_t, EpochPoint> by_epoch;  // a repeated epoch (a resumed run): the last wins
  bool percent_format = false;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    EpochPoint point;
    const std::string what = "'" + printable(path) + "' line " + std::to_string(++n);
    if (parse_epoch_line(line, what, point, percent_format)) by_epoch[point.epoch] = point;
  }
  OSPREY_CHECK(!by_epoch.empty(), "run '", printable(run), "' has no epochs in metrics.jsonl yet");
  RunCurves curves{display_name(run), {}, false};
  double max_acc = 0;
  for (const auto& kv : by_epoch) {
    curves.epochs.push_back(kv.second);
    curves.has_train_acc = curves.has_train_acc || !std::isnan(kv.second.train_acc);
    max_acc = std::max(
        {max_acc, kv.second.test_acc, std::isnan(kv.second.train_acc) ? 0.0 : kv.second.train_acc});
  }
  // Files written before accuracies were in percent hold fractions.
  if (!percent_format && max_acc <= 1.0)
    for (EpochPoint& p : curves.epochs) p.test_acc *= 100, p.train_acc *= 100;
  return curves;
}

// A gnuplot single-quoted string: nothing in it is interpreted (no backslash escapes, macros or
// backquote commands) except '' for a quote; control bytes are escaped so it stays on one line.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : printable(text)) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A file that is removed when this goes out of scope.
struct TempFile {
  std::string path;
  explicit TempFile(std::string p) : path(std::move(p)) {}
  ~TempFile() { ::unlink(path.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

// A new, empty file in the system temp dir with `contents` ("osprey-plot-XXXXXX").
std::string write_temp(const std::string& contents) {
  std::string path = (fs::temp_directory_path() / "osprey-plot-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  OSPREY_CHECK(fd >= 0, "cannot create a temporary file for gnuplot: ", std::strerror(errno));
  const bool written = ::write(fd, contents.data(), contents.size()) == ssize_t(contents.size());
  if (::close(fd) != 0 || !written) {
    ::unlink(path.c_str());
    fail("cannot write '", path, "': ", std::strerror(errno));
  }
  return path;
}

// Gnuplot's data: one block per run (its index), columns epoch, train_loss, test_loss,
// train_acc, test_acc; NaN for a missing value.
std::string data_text(const std::vector<RunCurves>& runs) {
  std::ostringstream out;
  out.precision(9);
  for (const RunCurves& run : runs) {
    for (const EpochPoint& p : run.epochs)
      out << p.epoch << ' ' << p.train_loss << ' ' << p.test_loss << ' ' << p.train_acc << ' '
          << p.test_acc << '\n';
    out << "\n\n";
  }
  return out.str();
}

// Integer tick spacing that puts at most about 12 ticks over `span` epochs.
int64_t epoch_tick_step(int64_t span) {
  for (int64_t step = 1;; step *= 10)
    for (int64_t m : {1, 2, 5})
      if (span / (step * m) <= 12) return step * m;
}

// One panel's plot command: for each run, the train curve dashed (when the run has it) and the
// test curve solid, in the run's color.
std::string plot_command(const std::vector<RunCurves>& runs, const std::string& data, int train_col,
                         int test_col, bool is_accuracy) {
  std::string cmd = "plot";
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string source = " " + quoted(data) + " index " + std::to_string(i) + " using 1:";
    const std::string style = " with linespoints pt 7 ps 0.6 lw 2 lc rgb '" + run_color(i) + "'";
    if (!is_accuracy || runs[i].has_train_acc)
      cmd += source + std::to_string(train_col) + style + " dt 2 title " +
             quoted(runs[i].name + " train") + ",";
    cmd += source + std::to_string(test_col) + style + " dt 1 title " +
           quoted(runs[i].name + " test") + ",";
  }
  cmd.pop_back();
  return cmd + "\n";
}

std::string script_text(const std::vector<RunCurves>& runs, const std::string& data,
                        const std::string& png, const PlotOptions& options) {
  int64_t first = kMaxEpoch, last = 1;
  for (const RunCurves& run : runs) {
    first = std::min(first, run.epochs.front().epoch);
    last = std::max(last, run.epochs.back().epoch);
  }
  // Half an epoch of margin keeps the first and last points off the axes.
  const double lo = first - 0.5, hi = last + 0.5;
  std::ostringstream s;
  s << "set terminal pngcairo size " << options.width << "," << options.height
    << " noenhanced font ',10'\n"
    << "set output " << quoted(png) << "\n"
    << "set datafile missing 'NaN'\n"
    << "set multiplot layout 1,2\n"
    << "set grid\nset key below horizontal\n"
    << "set xlabel 'epoch'\nset xrange [" << lo << ":" << hi << "]\n"
    << "set xtics " << epoch_tick_step(last - first) << "\nset format x '%.0f'\n"
    << "set offsets 0, 0, graph 0.05, graph 0.05\n";
  if (!options.axes_report.empty()) s << "set print " << quoted(options.axes_report) << "\n";
  const char* report = "print sprintf('%s %.9g %.9g %.9g %.9g', ";
  const char* ranges = ", GPVAL_X_MIN, GPVAL_X_MAX, GPVAL_Y_MIN, GPVAL_Y_MAX)\n";
  s << "set title 'loss'\nset ylabel 'loss (train dashed, test solid)'\n"
    << plot_command(runs, data, 2, 3, false);
  if (!options.axes_report.empty()) s << report << "'loss'" << ranges;
  // 100% stays inside the axis, which autoscaling to the next tick would take to 110.
  s << "set title 'accuracy'\nset ylabel 'accuracy (%)'\nset yrange [0<*:*<105]\n"
    << plot_command(runs, data, 4, 5, true);
  if (!options.axes_report.empty()) s << report << "'accuracy'" << ranges;
  s << "unset multiplot\nset output\n";
  return s.str();
}

// Runs `gnuplot SCRIPT` (no shell), stdin from /dev/null; fails with its output when it fails.
void run_gnuplot(const std::string& script) {
  int out[2];
  OSPREY_CHECK(::pipe2(out, O_CLOEXEC) == 0, "cannot create a pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::string program = "gnuplot", arg = script;
  char* argv[] = {program.data(), arg.data(), nullptr};
  // gnuplot gets the signal mask the process started with, not the stop signals blocked.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  const sigset_t mask = signal_mask_before_routing();
  posix_spawnattr_setsigmask(&attributes, &mask);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, "gnuplot", &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    OSPREY_CHECK(err != ENOENT,
                 "gnuplot not found: install gnuplot-nox (tools/install_deps.sh does)");
    fail("cannot run gnuplot: ", std::strerror(err));
  }
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (output.size() < 4000) output.append(buf, size_t(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!output.empty() && std::isspace(static_cast<unsigned char>(output.back())))
    output.pop_back();
  OSPREY_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "gnuplot failed: ", printable(output.empty() ? std::string("no output") : output));
}

}  // namespace

std::string run_color(size_t i) {
  static const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                  "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return palette[i % (sizeof palette / sizeof *palette)];
}

std::string plot_runs(const std::vector<std::string>& runs, const std::string& output,
                      const std::string& runs_dir, const PlotOptions& options) {
  OSPREY_CHECK(!runs.empty(), "plot: name at least one run");
  const std::string output_png =
      !output.empty() ? output
      : runs.size() == 1
          ? (fs::path(metrics_path_of(runs[0], runs_dir)).parent_path() / "curves.png").string()
          : std::string("curves.png");
  OSPREY_CHECK(options.width >= 200 && options.width <= 10000 && options.height >= 150 &&
                   options.height <= 10000,
               "plot: size ", options.width, "x", options.height,
               " is outside 200x150..10000x10000");
  std::vector<RunCurves> curves;
  for (const std::string& run : runs) curves.push_back(read_run(run, runs_dir));
  // gnuplot writes a temporary name beside the output (the pattern remove_stale_temp_files
  // knows), renamed over it once complete: a reader never sees half a PNG.
  const fs::path target(output_png);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  OSPREY_CHECK(fs::is_directory(dir), "cannot write '", printable(output_png), "': no directory '",
               printable(dir.string()), "'");
  TempFile png(
      (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string());
  ::unlink(png.path.c_str());
  TempFile data(write_temp(data_text(curves)));
  TempFile script(write_temp(script_text(curves, data.path, png.path, options)));
  run_gnuplot(script.path);
  std::error_code ec;
  OSPREY_CHECK(fs::file_size(png.path, ec) > 0 && !ec, "gnuplot wrote no PNG at '",
               printable(png.path), "'");
  OSPREY_CHECK(::rename(png.path.c_str(), output_png.c_str()) == 0, "cannot write '",
               printable(output_png), "': ", std::strerror(errno));
  return output_png;
}

}  // namespace osprey::tools
