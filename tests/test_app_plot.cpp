// `osprey plot`: the PNG of real gnuplot output is checked for its size (IHDR), its pixels (the
// runs' colors are drawn) and its axes, which gnuplot itself reports (PlotOptions::axes_report:
// the GPVAL_ ranges of each panel after drawing it).
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "data/png_decode.h"
#include "kernels/error.h"
#include "tests/test_support.h"
#include "tools/plot.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

struct Epoch {
  int epoch;
  double train_loss, test_loss, train_acc, test_acc;
};

// A run that learns: loss falls, accuracy rises (in percent, or as fractions for an old file).
std::vector<Epoch> learning_curve(int epochs, double acc_start, double acc_gain) {
  std::vector<Epoch> out;
  for (int e = 1; e <= epochs; ++e)
    out.push_back({e, 2.3 * std::exp(-0.4 * e), 2.0 * std::exp(-0.3 * e) + 0.1,
                   acc_start + acc_gain * (e - 1) - 3, acc_start + acc_gain * (e - 1)});
  return out;
}

// metrics.jsonl as osprey train writes it now (percent, train_acc, elapsed_s), or as older
// versions did (test_acc a fraction, no train_acc); `tail` is appended as is.
void write_metrics(const fs::path& dir, const std::vector<Epoch>& epochs, bool old_format,
                   const std::string& tail = "") {
  fs::create_directories(dir);
  std::ofstream out(dir / "metrics.jsonl");
  out.precision(9);
  for (const Epoch& e : epochs) {
    out << "{\"epoch\":" << e.epoch << ",\"train_loss\":" << e.train_loss
        << ",\"test_loss\":" << e.test_loss << ",\"test_acc\":" << e.test_acc;
    if (!old_format) out << ",\"train_acc\":" << e.train_acc << ",\"elapsed_s\":" << e.epoch * 1.5;
    out << "}\n";
  }
  out << tail;
}

struct Axes {
  double x_min, x_max, y_min, y_max;
};

std::map<std::string, Axes> read_axes(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, Axes> out;
  std::string panel;
  Axes a{};
  while (in >> panel >> a.x_min >> a.x_max >> a.y_min >> a.y_max) out[panel] = a;
  return out;
}

data::Image decode_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  REQUIRE(data::detail::is_png(p, bytes.size()));
  return data::detail::png_decode(p, bytes.size(), path, data::kMaxImagePixels);
}

uint32_t rgb_of(const std::string& hex) {
  return uint32_t(std::stoul(hex.substr(1), nullptr, 16));
}

std::set<uint32_t> colors_of(const data::Image& img) {
  std::set<uint32_t> colors;
  for (size_t i = 0; i + 2 < img.pixels.size(); i += size_t(img.c))
    colors.insert(uint32_t(img.pixels[i]) << 16 | uint32_t(img.pixels[i + 1]) << 8 |
                  img.pixels[i + 2]);
  return colors;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("plot: two runs overlaid, the PNG's size, colors and axes", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  const fs::path runs = tmp.path / "runs";
  const auto fresh = learning_curve(6, 75, 5);     // percent up to 100, with train accuracy
  const auto old = learning_curve(4, 0.30, 0.05);  // fractions, as older metrics.jsonl
  write_metrics(runs / "fresh", fresh, false);
  write_metrics(runs / "old", old, true);
  const std::string png = tmp.file("curves.png"), axes = tmp.file("axes.txt");
  tools::PlotOptions options;
  options.axes_report = axes;

  REQUIRE(tools::plot_runs({"fresh", (runs / "old").string()}, png, runs.string(), options) == png);

  const data::Image img = decode_png(png);
  CHECK(img.w == options.width);
  CHECK(img.h == options.height);
  const std::set<uint32_t> colors = colors_of(img);
  CHECK(colors.size() > 10);  // white, black, grid, two runs, antialiasing
  CHECK(colors.count(rgb_of(tools::run_color(0))) == 1);
  CHECK(colors.count(rgb_of(tools::run_color(1))) == 1);

  const auto panels = read_axes(axes);
  REQUIRE(panels.size() == 2);
  for (const auto& [name, a] : panels) {
    INFO(name);
    CHECK(a.x_min < 1);  // the epochs of both runs, 1..6, and no more
    CHECK(a.x_min > 0);
    CHECK(a.x_max > 6);
    CHECK(a.x_max < 7);
  }
  double loss_lo = 1e9, loss_hi = -1e9, acc_lo = 1e9, acc_hi = -1e9;
  for (const auto* run : {&fresh, &old})
    for (const Epoch& e : *run) {
      loss_lo = std::min({loss_lo, e.train_loss, e.test_loss});
      loss_hi = std::max({loss_hi, e.train_loss, e.test_loss});
    }
  for (const Epoch& e : fresh)
    acc_lo = std::min({acc_lo, e.test_acc, e.train_acc}),
    acc_hi = std::max({acc_hi, e.test_acc, e.train_acc});
  for (const Epoch& e : old) acc_lo = std::min(acc_lo, 100 * e.test_acc);
  const Axes loss = panels.at("loss"), acc = panels.at("accuracy");
  CHECK(loss.y_min <= loss_lo);
  CHECK(loss.y_max >= loss_hi);
  CHECK(acc.y_min <= acc_lo);
  CHECK(acc.y_max >= acc_hi);
  // The old run's fractions were shown in percent: unscaled, the axis would reach down to 0.3.
  CHECK(acc.y_min > acc_lo / 2);
  CHECK(acc.y_max <= 105);  // 100% inside the axis, not a tick step above it
  CHECK(files_in(tmp.path) == std::vector<std::string>{"axes.txt", "curves.png", "runs"});
}

TEST_CASE("plot: a run name with quotes and gnuplot syntax plots as it is", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  const fs::path run = tmp.path / "it's \"a\" `touch pwned` @x";
  write_metrics(run, learning_curve(3, 50, 10), false);
  const std::string png = (run / "curves.png").string();
  REQUIRE_NOTHROW(tools::plot_runs({run.string()}, png));
  const data::Image img = decode_png(png);
  CHECK(img.w == 1200);
  CHECK(colors_of(img).count(rgb_of(tools::run_color(0))) == 1);
  CHECK_FALSE(fs::exists("pwned"));
  CHECK_FALSE(fs::exists(run / "pwned"));
}

TEST_CASE("plot: a line cut by a kill and lines that are no epoch are skipped", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  const fs::path run = tmp.path / "cut";
  write_metrics(run, learning_curve(3, 50, 10), false,
                "not json\n{\"epoch\":\"4\",\"train_loss\":1}\n{\"epoch\":4,\"train_lo");
  tools::PlotOptions options;
  options.axes_report = tmp.file("axes.txt");
  REQUIRE_NOTHROW(tools::plot_runs({run.string()}, tmp.file("c.png"), "runs", options));
  const auto panels = read_axes(options.axes_report);
  REQUIRE(panels.count("loss") == 1);
  CHECK(panels.at("loss").x_max > 3);
  CHECK(panels.at("loss").x_max < 4);
}

TEST_CASE("plot: a single epoch gets an axis around it", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  write_metrics(tmp.path / "one", learning_curve(1, 50, 10), false);
  tools::PlotOptions options;
  options.axes_report = tmp.file("axes.txt");
  tools::plot_runs({(tmp.path / "one").string()}, tmp.file("c.png"), "runs", options);
  const Axes a = read_axes(options.axes_report).at("accuracy");
  CHECK(a.x_min < 1);
  CHECK(a.x_max > 1);
}

TEST_CASE("plot: a run without metrics or without epochs is one clear error", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  const std::string png = tmp.file("c.png");
  CHECK_THROWS_WITH(tools::plot_runs({"nothing"}, png, tmp.path.string()),
                    Catch::Contains("run 'nothing': no metrics.jsonl"));
  write_metrics(tmp.path / "fresh", {}, false, "{\"epoch\":1,\"train_lo");
  CHECK_THROWS_WITH(tools::plot_runs({"fresh"}, png, tmp.path.string()),
                    Catch::Contains("run 'fresh' has no epochs in metrics.jsonl yet"));
  write_metrics(tmp.path / "deep", {}, false, std::string(100, '[') + "\n");
  CHECK_THROWS_WITH(tools::plot_runs({"deep"}, png, tmp.path.string()),
                    Catch::Contains("nested deeper"));
  CHECK_THROWS_WITH(tools::plot_runs({}, png), Catch::Contains("at least one run"));
  write_metrics(tmp.path / "deep", learning_curve(2, 50, 10), false);
  CHECK_THROWS_WITH(tools::plot_runs({"deep"}, tmp.file("no/such/dir/c.png"), tmp.path.string()),
                    Catch::Contains("no directory"));
  CHECK(files_in(tmp.path) == std::vector<std::string>{"deep", "fresh"});
}

TEST_CASE("plot: without gnuplot on PATH, the error says how to install it", "[plot]") {
  tests::TempDir tmp("osprey_plot");
  write_metrics(tmp.path / "run", learning_curve(2, 50, 10), false);
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", tmp.path.c_str(), 1);
  std::string error;
  try {
    tools::plot_runs({(tmp.path / "run").string()}, tmp.file("c.png"));
  } catch (const Error& e) {
    error = e.what();
  }
  ::setenv("PATH", path.c_str(), 1);
  CHECK(error == "gnuplot not found: install gnuplot-nox (tools/install_deps.sh does)");
  CHECK_FALSE(fs::exists(tmp.file("c.png")));
}
