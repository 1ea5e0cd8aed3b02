// Where a step's time goes, op by op: when enabled, every op's forward and every autograd
// node's backward (and the optimizer) is timed between two device synchronisations, so on a
// GPU the figure is that op's device time plus its launches. Off by default (it serialises the
// device); `osprey bench train --profile` prints the table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace osprey::profiler {

// Starts (or stops) recording; device is the one to synchronise around each op.
void enable(bool on, Device device = Device::cpu);
bool enabled();
void reset();

struct Entry {
  std::string name;  // "forward conv_bn_act", "backward conv_bn_act_chain", "optimizer", ...
  int64_t calls = 0;
  double ms = 0.0;
};
// Everything recorded since the last reset, the most expensive first.
std::vector<Entry> report();

// Times its lifetime under `name` when recording. Exclusive: time spent in nested scopes is
// theirs (a block's backward shows as its convolutions, BatchNorms and the rest).
class Scope {
 public:
  explicit Scope(const char* name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  bool active_ = false;  // entered while recording
  double start_ms_ = 0.0;
};

}  // namespace osprey::profiler
