#include "engine/schedule.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace osprey {
namespace {
constexpr double kPi = 3.14159265358979323846;
double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}
}  // namespace

LrSchedule::LrSchedule(const ScheduleOptions& opts, float base_lr, int epochs,
                       int64_t steps_per_epoch)
    : opts_(opts), base_lr_(base_lr), epochs_(epochs), steps_per_epoch_(steps_per_epoch) {
  const std::string& k = opts.kind;
  OSPREY_CHECK(k == "constant" || k == "step" || k == "cosine" || k == "onecycle",
               "unknown schedule '", k, "' (valid: constant, step, cosine, onecycle)");
  OSPREY_CHECK(epochs >= 1 && steps_per_epoch >= 1, "schedule needs at least one epoch and step");
  if (k == "step") OSPREY_CHECK(opts.step_size >= 1, "step schedule: step_size must be >= 1");
  if (k == "onecycle")
    OSPREY_CHECK(opts.pct_start > 0 && opts.pct_start < 1 && opts.div_factor > 0 &&
                     opts.final_div_factor > 0,
                 "onecycle: pct_start must be in (0, 1), div factors positive");
}

float LrSchedule::lr(int epoch, int64_t step_in_epoch) const {
  const std::string& k = opts_.kind;
  if (k == "step") return float(base_lr_ * std::pow(double(opts_.gamma), epoch / opts_.step_size));
  if (k == "cosine")
    return float(cos_anneal(base_lr_, opts_.min_lr, double(epoch) / double(epochs_)));
  if (k == "onecycle") {
    double initial = base_lr_ / opts_.div_factor;
    return float(
        one_cycle(epoch, step_in_epoch, initial, base_lr_, initial / opts_.final_div_factor));
  }
  return base_lr_;
}

float LrSchedule::momentum(int epoch, int64_t step_in_epoch) const {
  OSPREY_CHECK(cycles_momentum(), "this schedule does not cycle the momentum");
  return float(
      one_cycle(epoch, step_in_epoch, opts_.max_momentum, opts_.base_momentum, opts_.max_momentum));
}

double LrSchedule::one_cycle(int epoch, int64_t step_in_epoch, double start, double peak,
                             double end_value) const {
  // torch.optim.lr_scheduler.OneCycleLR with anneal_strategy='cos', two phases.
  double total = double(epochs_) * double(steps_per_epoch_);
  double step = double(epoch) * double(steps_per_epoch_) + double(step_in_epoch);
  double warm_end = double(opts_.pct_start) * total - 1.0;
  double end = total - 1.0;
  if (step <= warm_end) return cos_anneal(start, peak, warm_end > 0 ? step / warm_end : 1.0);
  return cos_anneal(peak, end_value, std::min(1.0, (step - warm_end) / (end - warm_end)));
}

}  // namespace osprey
