// Softmax cross-entropy over logits [n][classes] with int64 labels, all on the device; same
// semantics as kernels/cpu/loss.h. Labels must be in [0, classes) (the caller checks).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace osprey::cuda {

// Writes the mean loss to *loss (one device float) and the probabilities to probs.
void softmax_cross_entropy_forward(int n, int classes, const float* logits, const int64_t* labels,
                                   float label_smoothing, float* probs, float* loss,
                                   cudaStream_t stream);
// dlogits = (*dloss) * (probs - target) / n, overwritten; dloss is one device float.
void softmax_cross_entropy_backward(int n, int classes, const float* probs, const int64_t* labels,
                                    float label_smoothing, const float* dloss, float* dlogits,
                                    cudaStream_t stream);

}  // namespace osprey::cuda
