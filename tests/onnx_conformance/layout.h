// Layout plumbing between ONNX and Osprey: ONNX tensors are channels-first (NCHW, OIHW), Osprey's
// activations and convolution weights channels-last (NHWC, OHWI). Copies on the host; no
// arithmetic.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace osprey::conformance {

// y.dim(i) == x.dim(perm[i]), for a cpu tensor of any dtype.
Tensor permute(const Tensor& x, const std::vector<int>& perm);
// [N, C, d...] -> [N, d..., C] (NCHW -> NHWC, OIHW -> OHWI).
Tensor channels_last(const Tensor& x);
// [N, d..., C] -> [N, C, d...].
Tensor channels_first(const Tensor& x);
// [R, C] -> [C, R].
Tensor transpose2d(const Tensor& x);

}  // namespace osprey::conformance
