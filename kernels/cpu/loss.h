// Softmax over the last axis of [rows][cols] arrays, on its own and inside the cross-entropy loss
// over logits [n][classes] with integer labels.
#pragma once
#include <cstdint>

namespace osprey::cpu {

// y = softmax(x) of each row; the exponentials are of x - max(row) (no overflow), summed in
// double.
void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
// dx = y * (dy - sum(dy * y)) per row, from the forward's output y; overwritten.
void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);
// y = x - log(sum(exp(x))) of each row, the log-sum-exp in double.
void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
// dx = dy - exp(y) * sum(dy) per row, from the forward's output y; overwritten.
void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);

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
