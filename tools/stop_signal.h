// Clean stops of a training run: SIGINT, SIGTERM and SIGUSR1 (SLURM's `--signal=USR1@T`
// warning before a time limit) ask the trainer to finish its step, write a resumable checkpoint
// and exit 128 + signal. A second SIGINT or SIGTERM exits at once: every file is written
// through a temporary name and a rename, so nothing is left half-written.
#pragma once

namespace osprey::tools {

class StopSignals {
 public:
  // Installs the handlers for the lifetime of the object (one at a time); restores the
  // previous ones when destroyed.
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received since construction, 0 when none.
  int received() const;
};

// "SIGINT", "SIGTERM", "SIGUSR1", or "signal N".
const char* signal_name(int sig);

}  // namespace osprey::tools
