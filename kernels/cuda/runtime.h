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

// Memory the pool has handed out: now, and the most since the last reset_peak_memory().
uint64_t used_memory_bytes();
uint64_t peak_memory_bytes();
void reset_peak_memory();

}  // namespace osprey::cuda
