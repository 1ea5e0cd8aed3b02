// Softmax cross-entropy over logits [n][classes] with integer labels.
#pragma once
#include <cstdint>

namespace osprey::cpu {

// Returns the mean loss; writes the softmax probabilities (for backward) into probs.
// Label smoothing eps mixes the one-hot target with the uniform distribution:
// target = (1 - eps) * onehot + eps / classes (PyTorch's label_smoothing). Labels must be in
// [0, classes); the caller checks.
double softmax_cross_entropy_forward(int n, int classes, const float* logits, const int64_t* labels,
                                     float label_smoothing, float* probs);
// dlogits = dloss * (probs - target) / n, overwritten.
void softmax_cross_entropy_backward(int n, int classes, const float* probs, const int64_t* labels,
                                    float label_smoothing, float dloss, float* dlogits);

}  // namespace osprey::cpu
