// Stop signals are taken by one thread of their own (tools/stop_signal.h). This binary has its
// own main: it routes the signals before any thread starts, as osprey's main does, and it is also
// the child program of the tests that need a fresh process.
// Catch's fatal-signal handler is on (the shared session): a corrupted heap may then hang it in
// malloc instead of aborting, and the test fails by its CTest timeout. It never sees the stop
// signals, which every thread blocks.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/error.h"
#include "tests/catch_session.h"
#include "tools/stop_signal.h"

extern char** environ;

namespace {

using namespace osprey;
using Clock = std::chrono::steady_clock;

bool any_stop_signal_blocked() {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGINT) || sigismember(&mask, SIGTERM) || sigismember(&mask, SIGUSR1);
}

// The child programs: `test_stop_signals --child WHAT`.
int run_child(const std::string& what) {
  if (what == "mask") return any_stop_signal_blocked() ? 3 : 0;
  if (what == "ignored-sigint") ::signal(SIGINT, SIG_IGN);
  tools::route_stop_signals();
  ::kill(::getpid(), what == "ignored-sigint" ? SIGINT : SIGTERM);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the signal ends it first, or not
  return 7;
}

// Runs `this --child WHAT` with the signal mask the process started with; its wait status.
int child_status(const char* what) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  const sigset_t mask = tools::signal_mask_before_routing();
  posix_spawnattr_setsigmask(&attributes, &mask);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  std::string self = "/proc/self/exe", flag = "--child", arg = what;
  char* argv[] = {self.data(), flag.data(), arg.data(), nullptr};
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, self.c_str(), nullptr, &attributes, argv, environ);
  posix_spawnattr_destroy(&attributes);
  REQUIRE(err == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

std::vector<float> random_matrix(int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> m(size_t(rows) * cols);
  for (float& v : m) v = u(rng);
  return m;
}

}  // namespace

// With a handler, a signal landing while oneDNN's JIT GEMM runs with its stack pointer in the
// heap writes the signal frame over heap memory: glibc aborts on a later free ("corrupted size
// vs. prev_size"), or a result changes. Thousands of signals during GEMMs must change nothing.
TEST_CASE("a storm of stop signals during oneDNN GEMMs leaves the heap and the results intact") {
  tools::StopSignals stop;
  const int m = 384, n = 256, k = 320;
  // b is [k][n]; bt is [n][k], the transposed operand of the second GEMM of each pair.
  const std::vector<float> a = random_matrix(m, k, 1), b = random_matrix(k, n, 2),
                           bt = random_matrix(n, k, 3);
  std::vector<float> want(size_t(m) * n), got(want.size());
  cpu::sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, want.data(), n);

  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::thread sender([&] {
    while (!done) {
      ::kill(::getpid(), SIGUSR1);
      ++sent;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  struct JoinAtExit {
    std::atomic<bool>& done;
    std::thread& thread;
    ~JoinAtExit() {
      done = true;
      thread.join();
    }
  } join_sender{done, sender};
  int gemms = 0, mismatches = 0;
  std::mt19937 sizes(3);
  // At least 1.5 s and 1000 signals: a loaded machine sends fewer a second (capped at 60 s).
  const Clock::time_point start = Clock::now();
  auto storming = [&] {
    const auto elapsed = Clock::now() - start;
    return elapsed < std::chrono::milliseconds(1500) ||
           (sent.load() <= 1000 && elapsed < std::chrono::seconds(60));
  };
  while (storming()) {
    cpu::sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, got.data(), n);
    if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) != 0) ++mismatches;
    cpu::sgemm(false, true, m, n, k, 1.0f, a.data(), k, bt.data(), k, 0.0f, got.data(), n);
    // Allocations of many sizes make glibc walk (and check) its free chunks.
    std::vector<std::vector<char>> blocks;
    for (int i = 0; i < 16; ++i) blocks.emplace_back(size_t(64 + sizes() % 200000));
    ++gemms;
  }
  INFO(sent.load() << " signals during " << gemms << " GEMMs");
  CHECK(sent.load() > 1000);
  CHECK(mismatches == 0);
  CHECK(stop.received() == SIGUSR1);
}

TEST_CASE("only one StopSignals listens at a time") {
  tools::StopSignals first;
  CHECK_THROWS_WITH(tools::StopSignals(), Catch::Contains("only one may be installed"));
}

TEST_CASE("without a StopSignals a routed signal keeps the disposition it had") {
  const int killed = child_status("sigterm");
  CHECK(WIFSIGNALED(killed));
  CHECK(WTERMSIG(killed) == SIGTERM);
  const int ignored = child_status("ignored-sigint");
  REQUIRE(WIFEXITED(ignored));
  CHECK(WEXITSTATUS(ignored) == 7);
}

TEST_CASE("a spawned program starts with the stop signals unblocked") {
  REQUIRE(any_stop_signal_blocked());  // here, after routing
  const int status = child_status("mask");
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--child") return run_child(argv[2]);
  // The storm's last SIGUSR1 may arrive after its StopSignals is gone: ignored, as routed.
  ::signal(SIGUSR1, SIG_IGN);
  osprey::tools::route_stop_signals();
  return osprey_test::run_catch_session(argc, argv);
}
