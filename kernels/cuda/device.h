// CUDA device discovery and the error-check macro every CUDA call goes through.
#pragma once
#include <string>

namespace osprey::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();
std::string device_name(int device);

}  // namespace osprey::cuda
