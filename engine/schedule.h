// Learning-rate schedules, as functions of (epoch, step within the epoch), so that a resumed run
// gets exactly the rate an uninterrupted one would.
#pragma once
#include <cstdint>
#include <string>

namespace osprey {

struct ScheduleOptions {
  std::string kind = "constant";  // constant | step | cosine | onecycle
  int step_size = 10;             // step: epochs between decays
  float gamma = 0.1f;             // step: decay factor
  float min_lr = 0.0f;            // cosine: eta_min
  float pct_start = 0.3f;         // onecycle: fraction of steps spent warming up
  float div_factor = 25.0f;       // onecycle: initial lr = max lr / div_factor
  float final_div_factor = 1e4f;  // onecycle: final lr = initial lr / final_div_factor
  // onecycle: momentum (SGD) or beta1 (Adam) moves against the rate, max -> base -> max
  // (PyTorch's OneCycleLR cycle_momentum).
  bool cycle_momentum = false;
  float base_momentum = 0.85f, max_momentum = 0.95f;
};

class LrSchedule {
 public:
  // base_lr is the optimizer's lr (onecycle: the peak). Fails on an unknown kind, naming the
  // valid ones.
  LrSchedule(const ScheduleOptions& opts, float base_lr, int epochs, int64_t steps_per_epoch);
  // The rate for the given 0-based epoch and step within it. step and cosine change per epoch
  // (like PyTorch's StepLR / CosineAnnealingLR stepped once an epoch), onecycle per step.
  float lr(int epoch, int64_t step_in_epoch) const;
  // onecycle with cycle_momentum: the momentum for that step; otherwise no value.
  bool cycles_momentum() const { return opts_.kind == "onecycle" && opts_.cycle_momentum; }
  float momentum(int epoch, int64_t step_in_epoch) const;

 private:
  ScheduleOptions opts_;
  float base_lr_;
  int epochs_;
  int64_t steps_per_epoch_;
  // OneCycleLR's two cosine phases: start -> peak during the warm-up, then peak -> end.
  double one_cycle(int epoch, int64_t step_in_epoch, double start, double peak, double end) const;
};

}  // namespace osprey
