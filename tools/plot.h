// `osprey plot`: training curves of one or more runs as a PNG, drawn by gnuplot.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace osprey::tools {

struct PlotOptions {
  int width = 1200, height = 500;  // pixels; the two panels share the width
  // When set, gnuplot writes there one line per panel, "loss|accuracy XMIN XMAX YMIN YMAX": the
  // axis ranges it drew (its GPVAL_ variables), so tests can check the axes of a real plot.
  std::string axes_report;
};

// Reads each run's metrics.jsonl (a run directory, or a run name under runs_dir) and writes one
// PNG with two panels, loss (train dashed, test solid) and accuracy in percent, against the
// epoch, the runs overlaid in the colors of run_color. Lines that are not a complete epoch
// (one cut by a kill) are skipped; train accuracy is drawn where the file has it; old files
// with accuracies as fractions (no "elapsed_s", no "train_acc", all accuracies <= 1) are shown
// in percent too. The PNG is replaced atomically; an empty output_png means the run's folder's
// curves.png for one run, ./curves.png for several. Returns the path written. Fails with a clear
// message when a run has no metrics or no epoch yet, or gnuplot is missing or fails.
std::string plot_runs(const std::vector<std::string>& runs, const std::string& output_png,
                      const std::string& runs_dir = "runs", const PlotOptions& options = {});

// The color of the i-th run, "#rrggbb" (the palette repeats after 8 runs).
std::string run_color(size_t i);

}  // namespace osprey::tools
