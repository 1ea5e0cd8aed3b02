// Max pooling and global average pooling on NHWC activations; same semantics as
// kernels/cpu/pool.h (argmax holds the flat input index h*W + w, ties keep the first).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/types.h"

namespace osprey::cuda {

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax,
                       cudaStream_t stream);
// dx overwritten.
void maxpool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx,
                        cudaStream_t stream);
// x [n][hw][c] -> y [n][c]; backward spreads dy / hw (dx overwritten).
void global_avg_pool_forward(int n, int hw, int c, const float* x, float* y, cudaStream_t stream);
void global_avg_pool_backward(int n, int hw, int c, const float* dy, float* dx,
                              cudaStream_t stream);

}  // namespace osprey::cuda
