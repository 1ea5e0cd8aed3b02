#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/runtime.h"

namespace osprey::cuda {
namespace {

struct Runtime {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
};

Runtime& state() {
  static Runtime r;
  return r;
}

std::once_flag g_init;

void init() {
  std::call_once(g_init, [] {
    Runtime& r = state();
    OSPREY_CUDA_CHECK(cudaSetDevice(r.device));
    OSPREY_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    OSPREY_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&r.pool, r.device));
    // Keep freed memory in the pool: a training step frees and reallocates the same sizes.
    uint64_t threshold = UINT64_MAX;
    OSPREY_CUDA_CHECK(cudaMemPoolSetAttribute(r.pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  });
}

}  // namespace

void set_device(int device) {
  Runtime& r = state();
  OSPREY_CHECK(!r.stream || r.device == device, "cuda::set_device(", device,
               ") after the runtime started on device ", r.device);
  r.device = device;
  init();
}

int current_device() {
  init();
  return state().device;
}

cudaStream_t compute_stream() {
  init();
  // The current device is per host thread: a thread that reaches here first (a server's batching
  // worker) is pointed at this process's GPU once.
  thread_local bool bound = false;
  if (!bound) {
    OSPREY_CUDA_CHECK(cudaSetDevice(state().device));
    bound = true;
  }
  return state().stream;
}

void synchronize() {
  OSPREY_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
}

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  OSPREY_CUDA_CHECK(cudaMallocAsync(&p, bytes ? bytes : 1, compute_stream()));
  return p;
}

void device_free(void* ptr) {
  if (ptr) OSPREY_CUDA_CHECK(cudaFreeAsync(ptr, compute_stream()));
}

void* pinned_malloc(size_t bytes) {
  init();
  void* p = nullptr;
  OSPREY_CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 1));
  return p;
}

void pinned_free(void* ptr) {
  if (ptr) OSPREY_CUDA_CHECK(cudaFreeHost(ptr));
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes)
    OSPREY_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, compute_stream()));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes)
    OSPREY_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, compute_stream()));
  synchronize();
}

void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes && dst != src)
    OSPREY_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, compute_stream()));
}

void copy_any(void* dst, const void* src, size_t bytes) {
  if (bytes)
    OSPREY_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, compute_stream()));
  synchronize();
}

void memset_device(void* dst, int value, size_t bytes) {
  if (bytes) OSPREY_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, compute_stream()));
}

AsyncUploader::AsyncUploader() {
  init();
  OSPREY_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
  OSPREY_CUDA_CHECK(cudaEventCreateWithFlags(&allocated_, cudaEventDisableTiming));
  for (Slot& s : slots_)
    OSPREY_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
}

AsyncUploader::~AsyncUploader() {
  cudaStreamSynchronize(copy_);
  for (Slot& s : slots_) {
    if (s.pinned) cudaFreeHost(s.pinned);
    cudaEventDestroy(s.done);
  }
  cudaEventDestroy(allocated_);
  cudaStreamDestroy(copy_);
}

void AsyncUploader::upload(void* dst, const void* host, size_t bytes) {
  if (!bytes) return;
  Slot& s = slots_[next_];
  next_ ^= 1;
  OSPREY_CUDA_CHECK(cudaEventSynchronize(s.done));  // the slot's previous copy has left its buffer
  if (s.capacity < bytes) {
    if (s.pinned) OSPREY_CUDA_CHECK(cudaFreeHost(s.pinned));
    s.pinned = nullptr;
    OSPREY_CUDA_CHECK(cudaMallocHost(&s.pinned, bytes));
    s.capacity = bytes;
  }
  std::memcpy(s.pinned, host, bytes);
  // dst came from the pool on the compute stream: the copy stream must see that allocation.
  OSPREY_CUDA_CHECK(cudaEventRecord(allocated_, compute_stream()));
  OSPREY_CUDA_CHECK(cudaStreamWaitEvent(copy_, allocated_, 0));
  OSPREY_CUDA_CHECK(cudaMemcpyAsync(dst, s.pinned, bytes, cudaMemcpyHostToDevice, copy_));
  OSPREY_CUDA_CHECK(cudaEventRecord(s.done, copy_));
  OSPREY_CUDA_CHECK(cudaStreamWaitEvent(compute_stream(), s.done, 0));
}

uint64_t used_memory_bytes() {
  init();
  uint64_t v = 0;
  OSPREY_CUDA_CHECK(cudaMemPoolGetAttribute(state().pool, cudaMemPoolAttrUsedMemCurrent, &v));
  return v;
}

uint64_t peak_memory_bytes() {
  init();
  uint64_t v = 0;
  OSPREY_CUDA_CHECK(cudaMemPoolGetAttribute(state().pool, cudaMemPoolAttrUsedMemHigh, &v));
  return v;
}

void reset_peak_memory() {
  init();
  uint64_t zero = 0;
  OSPREY_CUDA_CHECK(cudaMemPoolSetAttribute(state().pool, cudaMemPoolAttrUsedMemHigh, &zero));
}

}  // namespace osprey::cuda
