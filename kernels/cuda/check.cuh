// The CUDA runtime and cuBLASLt members of the error-check family (kernels/error.h): each names
// the failing call, file and line, and throws osprey::Error.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "kernels/error.h"

#define OSPREY_CUDA_CHECK(call)                                       \
  do {                                                                \
    const cudaError_t osprey_status_ = (call);                        \
    if (osprey_status_ != cudaSuccess)                                \
      ::osprey::throw_call_error("CUDA", #call, __FILE__, __LINE__,   \
                                 cudaGetErrorString(osprey_status_)); \
  } while (0)

#define OSPREY_CUBLAS_CHECK(call)                                          \
  do {                                                                     \
    const cublasStatus_t osprey_status_ = (call);                          \
    if (osprey_status_ != CUBLAS_STATUS_SUCCESS)                           \
      ::osprey::throw_call_error("cuBLASLt", #call, __FILE__, __LINE__,    \
                                 cublasLtGetStatusString(osprey_status_)); \
  } while (0)
