// The op API: functions on tensors that run a kernel and, when gradients are wanted, record one
// coarse autograd node. Activations are NHWC; conv weights [K][KH][KW][C]; linear weights
// [out][in] (PyTorch's). Shapes are checked here, so kernels can trust them.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace osprey::ops {

// x [N,H,W,C], w [K,KH,KW,C], bias [K] or undefined -> [N,OH,OW,K].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int pad);
// x [N,H,W,C], w [KH,KW,C] (one filter per channel: groups == C), bias [C] or undefined ->
// [N,OH,OW,C].
Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int pad);
// x [N,in], w [out,in], bias [out] or undefined -> [N,out].
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
Tensor relu(const Tensor& x);
// x [N,H,W,C] -> [N,OH,OW,C]; padding counts as -inf.
Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad = 0);
// [N,H,W,C] -> [N,C]: the mean over H and W.
Tensor global_avg_pool(const Tensor& x);
// max_pool2d(conv2d(x, w, bias, 1, pad), pool, pool) in one pass for an input of at most 4
// channels needing no gradient (a first layer); otherwise, or on cuda, the two ops.
Tensor conv2d_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& bias, int pad, int pool);
// Inverted dropout; the identity (no node) when !training or p == 0.
Tensor dropout(const Tensor& x, float p, bool training, Rng& rng);
// Same data, new shape, recorded so gradients flow back in the original shape.
Tensor reshape(const Tensor& x, const Shape& shape);
// [N, ...] -> [N, prod(...)]; in NHWC that is H,W,C order.
Tensor flatten(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);
// x converted to dtype (f32 <-> bf16, rounding to nearest even); the gradient is converted
// back. The identity (no node) when x already has that dtype.
Tensor cast(const Tensor& x, DType dtype);
// Softmax and log-softmax over the last dimension of an f32 tensor of any rank >= 1, same shape
// out. There is no CUDA kernel: a cuda tensor fails with a message saying so (no hidden copy to
// the host).
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
// logits [N,K] f32, labels [N] i64 in [0,K) -> scalar mean loss.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                             float label_smoothing = 0.0f);
// How many rows of logits [N,K] have their largest value (the first, on ties) at the label:
// a host-side count for metrics, not differentiable (reads the logits back from a GPU).
int64_t count_top1(const Tensor& logits, const Tensor& labels);

}  // namespace osprey::ops
