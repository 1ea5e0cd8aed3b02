#include "engine/device.h"

#include "engine/error.h"

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
#ifdef OSPREY_WITH_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "auto") return cuda_available() ? Device::cuda : Device::cpu;
  OSPREY_CHECK(name == "cuda", "unknown device '", name, "' (valid: cpu, cuda, auto)");
  OSPREY_CHECK(cuda_built(), "device cuda: this osprey was built without CUDA");
  OSPREY_CHECK(cuda_available(), "device cuda: no CUDA GPU is visible to this process");
  return Device::cuda;
}

void select_gpu(int index) {
#ifdef OSPREY_WITH_CUDA
  int count = cuda::device_count();
  OSPREY_CHECK(index >= 0 && index < count, "GPU ", index, " requested (node-local rank ", index,
               ") but this node has ", count, " GPU", count == 1 ? "" : "s",
               ": start at most one rank per GPU on each node");
  cuda::set_device(index);
#else
  fail("select_gpu: this osprey was built without CUDA");
#endif
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

void synchronize(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) cuda::synchronize();
#endif
}

uint64_t peak_device_memory(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) return cuda::peak_memory_bytes();
#endif
  return 0;
}

void reset_peak_device_memory(Device device) {
#ifdef OSPREY_WITH_CUDA
  if (device == Device::cuda) cuda::reset_peak_memory();
#endif
}

}  // namespace osprey
