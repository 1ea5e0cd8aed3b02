#include "engine/storage.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "kernels/error.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace osprey {
namespace {

constexpr size_t kAlign = 64;

struct CpuBlockCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // exact rounded size -> blocks

  ~CpuBlockCache() { release(); }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& kv : free_blocks)
      for (void* p : kv.second) std::free(p);
    free_blocks.clear();
  }
};

CpuBlockCache& cache() {
  static CpuBlockCache* c = new CpuBlockCache();  // never destroyed: storages may outlive main
  return *c;
}

// Bytes of CPU tensors alive now (cached blocks excluded) and the most since the last reset.
std::atomic<uint64_t> cpu_bytes_in_use{0}, cpu_bytes_peak{0};

void count_cpu_allocation(size_t bytes) {
  const uint64_t now = cpu_bytes_in_use.fetch_add(bytes) + bytes;
  uint64_t peak = cpu_bytes_peak.load();
  while (now > peak && !cpu_bytes_peak.compare_exchange_weak(peak, now)) {
  }
}

size_t rounded(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  if (device == Device::cuda) {
#ifdef OSPREY_WITH_CUDA
    // The stream-ordered pool caches freed blocks itself (release threshold raised).
    return std::shared_ptr<Storage>(new Storage(cuda::device_malloc(bytes), bytes, device));
#else
    fail("this osprey was built without CUDA: cannot allocate a cuda tensor");
#endif
  }
  size_t size = rounded(bytes == 0 ? 1 : bytes);
  void* ptr = nullptr;
  {
    auto& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
    }
  }
  if (!ptr) {
    ptr = std::aligned_alloc(kAlign, size);
    if (!ptr) throw std::bad_alloc();
  }
  count_cpu_allocation(size);
  return std::shared_ptr<Storage>(new Storage(ptr, size, device));
}

Storage::~Storage() {
#ifdef OSPREY_WITH_CUDA
  if (device_ == Device::cuda) {
    try {
      cuda::device_free(ptr_);
    } catch (...) {
      // A destructor must not throw; a failed free during error unwinding is not actionable.
    }
    return;
  }
#endif
  cpu_bytes_in_use.fetch_sub(bytes_);
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks[bytes_].push_back(ptr_);
}

uint64_t cpu_tensor_bytes_in_use() {
  return cpu_bytes_in_use.load();
}

uint64_t peak_cpu_tensor_bytes() {
  return cpu_bytes_peak.load();
}

void reset_peak_cpu_tensor_bytes() {
  cpu_bytes_peak.store(cpu_bytes_in_use.load());
}

void release_cached_cpu_memory() {
  cache().release();
}

}  // namespace osprey
