#include "tools/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "engine/error.h"

namespace osprey::tools {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1};
std::atomic<int> g_received{0};
std::atomic<bool> g_installed{false};
struct sigaction g_previous[3];
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs a lock-free flag");

void write_stderr(const char* text) {
  ssize_t ignored = ::write(2, text, std::strlen(text));
  (void)ignored;
}

// Async-signal-safe: an atomic store, write(2) and _exit only.
void on_signal(int sig) {
  int expected = 0;
  if (g_received.compare_exchange_strong(expected, sig)) {
    write_stderr(
        "\nosprey: stopping after this step to save a resumable checkpoint (press Ctrl-C again "
        "to quit at once)\n");
    return;
  }
  if (sig == SIGUSR1) return;  // a repeated warning changes nothing
  write_stderr("\nosprey: quitting at once; the last saved checkpoint is intact\n");
  ::_exit(128 + sig);
}

}  // namespace

StopSignals::StopSignals() {
  OSPREY_CHECK(!g_installed.exchange(true), "StopSignals: only one may be installed at a time");
  g_received = 0;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a read or write in progress is resumed, not failed
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
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
