// Owned memory for tensors. CPU blocks are 64-byte aligned and freed ones go back to a per-size
// cache; GPU blocks come from CUDA's stream-ordered pool. Either way the steady-state training
// step (same shapes every step) allocates nothing from the system.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/dtype.h"

namespace osprey {

class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device = Device::cpu);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* ptr, size_t bytes, Device device) : ptr_(ptr), bytes_(bytes), device_(device) {}
  void* ptr_;
  size_t bytes_;
  Device device_;
};

// Bytes of CPU tensor storage in use at most since the last reset (cached free blocks do not
// count); a reset starts from what is in use now.
uint64_t cpu_tensor_bytes_in_use();
uint64_t peak_cpu_tensor_bytes();
void reset_peak_cpu_tensor_bytes();

// Returns every cached CPU block to the system (tests and long-lived embedders call this).
void release_cached_cpu_memory();

}  // namespace osprey
