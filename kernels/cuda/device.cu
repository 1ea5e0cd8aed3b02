#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device.h"

namespace osprey::cuda {

int device_count() {
  // Asked before every staged MPI transfer (is this a GPU pointer?): probe the driver once.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device" error
      return 0;
    }
    return n;
  }();
  return count;
}

std::string device_name(int device) {
  cudaDeviceProp prop;
  OSPREY_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

}  // namespace osprey::cuda
