// cudaCheck: names the failing call, file and line. Kernels do not depend on engine/, so the
// error is a std::runtime_error; the engine rethrows it as osprey::Error where it matters.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace osprey::cuda {
inline void check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorString(err) + " in " + call +
                             " at " + file + ":" + std::to_string(line));
}
}  // namespace osprey::cuda

#define cudaCheck(call) ::osprey::cuda::check((call), #call, __FILE__, __LINE__)
