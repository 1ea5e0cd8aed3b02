// OSPREY_DISPATCH(device, fn, args...) runs cpu::fn(args...) or, on cuda,
// cuda::fn(args..., compute stream): the two kernel families share names and arguments, so an
// op states its kernel call once. Builds without CUDA fail clearly on a cuda tensor.
#pragma once
#include "engine/tensor.h"
#include "kernels/error.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/runtime.h"
#define OSPREY_CUDA_CALL(fn, ...) ::osprey::cuda::fn(__VA_ARGS__, ::osprey::cuda::compute_stream())
#else
#define OSPREY_CUDA_CALL(fn, ...) \
  ::osprey::fail("this osprey was built without CUDA (", #fn, " on a cuda tensor)")
#endif

#define OSPREY_DISPATCH(device, fn, ...)      \
  do {                                        \
    if ((device) == ::osprey::Device::cuda) { \
      OSPREY_CUDA_CALL(fn, __VA_ARGS__);      \
    } else {                                  \
      ::osprey::cpu::fn(__VA_ARGS__);         \
    }                                         \
  } while (0)
