#include <algorithm>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "kernels/cpu/loss.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/loss.h"
#endif

namespace osprey::ops {
namespace {

class SoftmaxCrossEntropyNode : public autograd::Node {
 public:
  SoftmaxCrossEntropyNode(Tensor probs, Tensor labels, float smoothing)
      : probs_(std::move(probs)), labels_(std::move(labels)), smoothing_(smoothing) {}
  const char* name() const override { return "softmax_cross_entropy"; }
  void backward() override {
    const Tensor& logits = inputs[0];
    if (!logits.requires_grad()) return;
    Tensor dlogits = autograd::grad_overwrite_target(logits);
    int n = int(logits.dim(0)), k = int(logits.dim(1));
    const Tensor dloss = outputs[0].grad();
    if (logits.device() == Device::cuda)
      OSPREY_CUDA_CALL(softmax_cross_entropy_backward, n, k, probs_.ptr<float>(),
                       labels_.ptr<int64_t>(), smoothing_, dloss.ptr<float>(),
                       dlogits.ptr<float>());
    else
      cpu::softmax_cross_entropy_backward(n, k, probs_.ptr<float>(), labels_.ptr<int64_t>(),
                                          smoothing_, dloss.data<float>()[0], dlogits.ptr<float>());
    autograd::commit_grad(logits, dlogits);
  }

 private:
  Tensor probs_, labels_;
  float smoothing_;
};

}  // namespace

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float label_smoothing) {
  profiler::Scope profile("forward softmax_cross_entropy");
  OSPREY_CHECK(logits.ndim() == 2 && logits.dtype() == DType::f32,
               "softmax_cross_entropy: logits must be f32 [N, classes], got ",
               shape_str(logits.shape()));
  OSPREY_CHECK(labels.dtype() == DType::i64 && labels.numel() == logits.dim(0),
               "softmax_cross_entropy: need ", logits.dim(0), " int64 labels, got ", labels.numel(),
               " of ", dtype_name(labels.dtype()));
  OSPREY_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f, "label_smoothing ",
               label_smoothing, " is not in [0, 1]");
  int n = int(logits.dim(0)), k = int(logits.dim(1));
  // Labels are checked on the host (a few bytes), so a bad label never reaches a kernel.
  Tensor host_labels = labels.to(Device::cpu);
  const int64_t* lab = host_labels.data<int64_t>();
  for (int i = 0; i < n; ++i)
    OSPREY_CHECK(lab[i] >= 0 && lab[i] < k, "softmax_cross_entropy: label ", lab[i], " of sample ",
                 i, " is outside [0, ", k, ")");
  const Device device = logits.device();
  Tensor dev_labels = labels.to(device);
  Tensor probs = Tensor::empty(logits.shape(), DType::f32, device);
  Tensor out = Tensor::empty({1}, DType::f32, device);
  if (device == Device::cuda)
    OSPREY_CUDA_CALL(softmax_cross_entropy_forward, n, k, logits.ptr<float>(),
                     dev_labels.ptr<int64_t>(), label_smoothing, probs.ptr<float>(),
                     out.ptr<float>());
  else
    out.data<float>()[0] = float(cpu::softmax_cross_entropy_forward(
        n, k, logits.ptr<float>(), lab, label_smoothing, probs.ptr<float>()));
  if (autograd::should_record({&logits})) {
    auto node = std::make_unique<SoftmaxCrossEntropyNode>(probs, dev_labels, label_smoothing);
    node->inputs = {logits};
    node->outputs = {out};
    autograd::record(std::move(node));
  }
  return out;
}

int64_t count_top1(const Tensor& logits, const Tensor& labels) {
  OSPREY_CHECK(logits.ndim() == 2 && logits.dtype() == DType::f32 && labels.dtype() == DType::i64 &&
                   labels.numel() == logits.dim(0),
               "count_top1: need f32 logits [N, K] and N int64 labels, got ",
               shape_str(logits.shape()), " and ", labels.numel(), " labels");
  const Tensor l = logits.to(Device::cpu), y = labels.to(Device::cpu);
  const int64_t n = l.dim(0), k = l.dim(1);
  const float* p = l.data<float>();
  const int64_t* lab = y.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * k;
    correct += std::max_element(row, row + k) - row == lab[i];
  }
  return correct;
}

}  // namespace osprey::ops
