// Deterministic random numbers. A counter-based stream: the value at position i depends only on
// (seed, i), so initialisations and dropout masks do not depend on thread counts.
#pragma once
#include <cmath>
#include <cstdint>

namespace osprey {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }

  uint64_t next_u64() { return splitmix64(seed_ * 0xD1B54A32D192ED03ull ^ counter_++); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {  // Box-Muller
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Reserves n positions for a counter-based kernel (e.g. dropout) and returns the first.
  uint64_t reserve(uint64_t n) {
    uint64_t first = counter_;
    counter_ += n;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace osprey
