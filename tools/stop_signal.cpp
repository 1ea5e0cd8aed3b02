#include "tools/stop_signal.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "kernels/error.h"

namespace osprey::tools {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1};
std::atomic<int> g_received{0};
std::atomic<bool> g_installed{false};  // a StopSignals exists
std::atomic<bool> g_stopping{false};   // and it is listening
std::once_flag g_routed;
std::atomic<bool> g_is_routed{false};
sigset_t g_mask_before;
bool g_ignored_before[3] = {false, false, false};

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kSignals) sigaddset(&set, sig);
  return set;
}

int slot_of(int sig) {
  return sig == SIGINT ? 0 : sig == SIGTERM ? 1 : 2;
}

void write_stderr(const char* text) {
  ssize_t ignored = ::write(2, text, std::strlen(text));
  (void)ignored;
}

// What the signal would have done had nobody routed it: end the process by it (the exit status
// shows the signal), or nothing when it was ignored.
void take_disposition_before(int sig) {
  if (g_ignored_before[slot_of(sig)]) return;
  ::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(sig);
}

void receive_forever() {
  const sigset_t set = stop_set();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (!g_stopping.load()) {
      take_disposition_before(sig);
      continue;
    }
    int expected = 0;
    if (g_received.compare_exchange_strong(expected, sig)) {
      write_stderr(
          "\nosprey: stopping after this step to save a resumable checkpoint (press Ctrl-C again "
          "to quit at once)\n");
      continue;
    }
    if (sig == SIGUSR1) continue;  // a repeated warning changes nothing
    write_stderr("\nosprey: quitting at once; the last saved checkpoint is intact\n");
    ::_exit(128 + sig);
  }
}

}  // namespace

void route_stop_signals() {
  std::call_once(g_routed, [] {
    for (int sig : kSignals) {
      struct sigaction before;
      sigaction(sig, nullptr, &before);
      g_ignored_before[slot_of(sig)] = before.sa_handler == SIG_IGN;
    }
    const sigset_t set = stop_set();
    OSPREY_CHECK(pthread_sigmask(SIG_BLOCK, &set, &g_mask_before) == 0,
                 "cannot block the stop signals");
    std::thread(receive_forever).detach();  // inherits the blocked mask sigwait needs
    g_is_routed = true;
  });
}

sigset_t signal_mask_before_routing() {
  if (g_is_routed) return g_mask_before;
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return now;
}

StopSignals::StopSignals() {
  route_stop_signals();
  OSPREY_CHECK(!g_installed.exchange(true), "StopSignals: only one may be installed at a time");
  g_received = 0;
  g_stopping = true;
}

StopSignals::~StopSignals() {
  g_stopping = false;
  g_installed = false;
}

int StopSignals::received() const {
  return g_received.load();
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

}  // namespace osprey::tools
