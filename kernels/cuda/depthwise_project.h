// Inference: an inverted-residual block's depthwise (+bias, act) and projection (+bias,
// residual) stages in one kernel; the depthwise outputs stay in shared memory. Same semantics
// as kernels/cpu/depthwise_project.h.
#pragma once
#include <cuda_runtime.h>

#include "kernels/types.h"

namespace osprey::cuda {

void depthwise_project_forward(const DepthwiseShape& s, int k, const float* x, const float* dw_w,
                               const float* dw_b, Activation act, const float* proj_w,
                               const float* proj_b, const float* residual, float* y,
                               cudaStream_t stream);

}  // namespace osprey::cuda
