#include "engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "engine/device.h"

namespace osprey::profiler {
namespace {

struct State {
  bool on = false;
  Device device = Device::cpu;
  std::mutex mu;
  std::map<std::string, Entry> entries;
};

State& state() {
  static State s;
  return s;
}

// Time spent in the open scopes' children, innermost last.
thread_local std::vector<double> t_child_ms;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void enable(bool on, Device device) {
  state().on = on;
  state().device = device;
}

bool enabled() {
  return state().on;
}

void reset() {
  std::lock_guard<std::mutex> lock(state().mu);
  state().entries.clear();
}

std::vector<Entry> report() {
  std::lock_guard<std::mutex> lock(state().mu);
  std::vector<Entry> out;
  for (const auto& kv : state().entries) out.push_back(kv.second);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
  return out;
}

Scope::Scope(const char* name) : name_(name) {
  if (!state().on) return;
  active_ = true;
  synchronize(state().device);  // what was queued before belongs to the enclosing scope
  t_child_ms.push_back(0.0);
  start_ms_ = now_ms();
}

Scope::~Scope() {
  if (!active_) return;
  try {
    synchronize(state().device);
  } catch (...) {
    // A destructor must not throw; the failing call reports itself elsewhere.
  }
  const double total = now_ms() - start_ms_;
  const double own = total - t_child_ms.back();
  t_child_ms.pop_back();
  if (!t_child_ms.empty()) t_child_ms.back() += total;
  std::lock_guard<std::mutex> lock(state().mu);
  Entry& e = state().entries[name_];
  e.name = name_;
  e.calls += 1;
  e.ms += own;
}

}  // namespace osprey::profiler
