#include "engine/device.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/storage.h"
#include "kernels/error.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/device.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"
#endif

namespace osprey {

bool cuda_built() {
#ifdef OSPREY_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
  return gpu_count() > 0;
}

int gpu_count() {
#ifdef OSPREY_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

namespace {
int g_local_rank = 0;
}  // namespace

void set_local_rank_gpu(int local_rank) {
  g_local_rank = local_rank;
}

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "auto" && !cuda_available()) return Device::cpu;
  OSPREY_CHECK(name == "cuda" || name == "auto", "unknown device '", name,
               "' (valid: cpu, cuda, auto)");
  OSPREY_CHECK(cuda_built(), "device cuda: this osprey was built without CUDA");
  OSPREY_CHECK(cuda_available(), "device cuda: no CUDA GPU is visible to this process");
#ifdef OSPREY_WITH_CUDA
  const int count = cuda::device_count();
  const char* share = std::getenv("OSPREY_SHARE_GPUS");
  const bool shared = share && std::string(share) == "1";
  OSPREY_CHECK(shared || g_local_rank < count, "node-local rank ", g_local_rank, " needs GPU ",
               g_local_rank, " but this node has ", count, " GPU", count == 1 ? "" : "s",
               ": start at most one rank per GPU on each node (or set OSPREY_SHARE_GPUS=1 to "
               "share them through the MPI communicator)");
  select_gpu(g_local_rank % count);
#endif
  return Device::cuda;
}

void select_gpu(int index) {
#ifdef OSPREY_WITH_CUDA
  int count = cuda::device_count();
  OSPREY_CHECK(index >= 0 && index < count, "GPU ", index, " requested but this node has ", count,
               " GPU", count == 1 ? "" : "s");
  cuda::set_device(index);
#else
  fail("select_gpu: this osprey was built without CUDA");
#endif
}

bool is_device_pointer(const void* p) {
#ifdef OSPREY_WITH_CUDA
  if (!cuda_available()) return false;
  cudaPointerAttributes attr;
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeDevice;
#else
  (void)p;
  return false;
#endif
}

void copy_bytes(void* dst, const void* src, size_t bytes) {
#ifdef OSPREY_WITH_CUDA
  if (is_device_pointer(dst) || is_device_pointer(src)) {
    cuda::copy_any(dst, src, bytes);
    return;
  }
#endif
  std::memmove(dst, src, bytes);
}

void* pinned_alloc(size_t bytes) {
#ifdef OSPREY_WITH_CUDA
  if (cuda_available()) return cuda::pinned_malloc(bytes);
#endif
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void pinned_free(void* p) {
#ifdef OSPREY_WITH_CUDA
  if (cuda_available()) {
    cuda::pinned_free(p);
    return;
  }
#endif
  std::free(p);
}

std::string device_description(Device device) {
  if (device == Device::cpu) return "cpu";
#ifdef OSPREY_WITH_CUDA
  int d = cuda::current_device();
  return "cuda:" + std::to_string(d) + " (" + cuda::device_name(d) + ")";
#else
  return "cuda";
#endif
}

void allow_tf32(bool on) {
#ifdef OSPREY_WITH_CUDA
  cuda::set_tf32(on);
#else
  (void)on;
#endif
}

#ifdef OSPREY_WITH_CUDA
struct BatchUploader::Impl {
  cuda::AsyncUploader uploader;
};
BatchUploader::BatchUploader() : impl_(std::make_unique<Impl>()) {}
Tensor BatchUploader::upload(const float* host, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::f32, Device::cuda);
  impl_->uploader.upload(t.raw(), host, t.nbytes());
  return t;
}
Tensor BatchUploader::upload_bytes(const void* host, size_t bytes) {
  Tensor t = Tensor::empty({int64_t(bytes)}, DType::u8, Device::cuda);
  impl_->uploader.upload(t.raw(), host, bytes);
  return t;
}
#else
struct BatchUploader::Impl {};
BatchUploader::BatchUploader() {
  fail("BatchUploader: this osprey was built without CUDA");
}
Tensor BatchUploader::upload(const float*, const Shape&) {
  fail("BatchUploader: this osprey was built without CUDA");
}
Tensor BatchUploader::upload_bytes(const void*, size_t) {
  fail("BatchUploader: this osprey was built without CUDA");
}
#endif
BatchUploader::~BatchUploader() = default;

void synchronize(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) cuda::synchronize();
#endif
}

uint64_t peak_device_memory(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) return cuda::peak_memory_bytes();
#endif
  return peak_cpu_tensor_bytes();
}

void reset_peak_device_memory(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) {
    cuda::reset_peak_memory();
    return;
  }
#endif
  reset_peak_cpu_tensor_bytes();
}

}  // namespace osprey
