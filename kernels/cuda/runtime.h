// The process's CUDA runtime state: one compute stream, device memory from the stream-ordered
// pool (cudaMallocAsync with the release threshold raised, so steady-state steps never return
// memory to the driver), pinned host memory, and copies.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace osprey::cuda {

// Selects the device this process uses (before any other call; default 0).
void set_device(int device);
int current_device();
// The stream every kernel of the engine runs on (created on first use, non-blocking).
cudaStream_t compute_stream();
// Waits for all work queued on the compute stream.
void synchronize();

// Stream-ordered allocation on the compute stream; free is ordered after queued work.
void* device_malloc(size_t bytes);
void device_free(void* ptr);
// Page-locked host memory for asynchronous uploads.
void* pinned_malloc(size_t bytes);
void pinned_free(void* ptr);

// Copies on the compute stream. to_host waits for the copy (and everything before it).
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes);
void memset_device(void* dst, int value, size_t bytes);
// Either direction (cudaMemcpyDefault); waits for the copy and everything queued before it.
void copy_any(void* dst, const void* src, size_t bytes);

// Host-to-device uploads on a copy stream of their own through two pinned staging buffers: the
// transfer of the next batch overlaps the kernels of the current step, and the compute stream
// waits for it (an event) before its first use.
class AsyncUploader {
 public:
  AsyncUploader();
  ~AsyncUploader();
  AsyncUploader(const AsyncUploader&) = delete;
  AsyncUploader& operator=(const AsyncUploader&) = delete;
  // dst: device memory allocated on the compute stream. host may be reused once this returns.
  void upload(void* dst, const void* host, size_t bytes);

 private:
  struct Slot {
    void* pinned = nullptr;
    size_t capacity = 0;
    cudaEvent_t done = nullptr;  // the copy out of `pinned` has finished
  };
  cudaStream_t copy_ = nullptr;
  cudaEvent_t allocated_ = nullptr;
  Slot slots_[2];
  int next_ = 0;
};

// Memory the pool has handed out: now, and the most since the last reset_peak_memory().
uint64_t used_memory_bytes();
uint64_t peak_memory_bytes();
void reset_peak_memory();

}  // namespace osprey::cuda
