// Clean stops of a training run: SIGINT, SIGTERM and SIGUSR1 (SLURM's `--signal=USR1@T`
// warning before a time limit) ask the trainer to finish its step, write a resumable checkpoint
// and exit 128 + signal. A second SIGINT or SIGTERM exits at once: every file is written
// through a temporary name and a rename, so nothing is left half-written.
//
// No handler ever runs on a compute thread: the three signals are blocked in every thread and
// one thread of their own takes them with sigwait. A handler runs on the interrupted thread's
// stack, and oneDNN's JIT GEMM kernels (Debian 12 ships oneDNN 2.7) point the stack pointer into
// the heap while they run, so a signal frame pushed there corrupts the heap (oneDNN issue #4845,
// fixed upstream in 2026).
#pragma once
#include <signal.h>

namespace osprey::tools {

// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread, and so in every thread it creates
// later, and starts the thread that receives them; once per process, later calls do nothing.
// Call it first in main, before any other thread exists: a thread started earlier keeps the
// signals unblocked, and one delivered to it takes the default action. While no StopSignals
// exists a received signal takes the disposition it had when this was called (ignored stays
// ignored, anything else ends the process by that signal).
void route_stop_signals();

// The signal mask before route_stop_signals (the current one when it was never called): what a
// spawned program gets.
sigset_t signal_mask_before_routing();

class StopSignals {
 public:
  // Routes the signals (route_stop_signals) and makes them stop requests for the lifetime of
  // the object; one at a time.
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received since construction, 0 when none.
  int received() const;
};

// "SIGINT", "SIGTERM", "SIGUSR1", or "a signal".
const char* signal_name(int sig);

}  // namespace osprey::tools
