// MobileNetV2 with torchvision's exact definition, parameter names and initialisation
// (torchvision.models.mobilenet_v2(num_classes, width_mult)), and the CIFAR variant whose stem
// and first 24-channel block use stride 1, so a 32x32 input ends at 4x4 instead of 1x1.
#pragma once
#include <vector>

#include "engine/conv_bn_act.h"
#include "engine/model.h"
#include "models/inverted_residual.h"

namespace osprey::models {

// torchvision's _make_divisible(v, divisor, min_value=None).
int make_divisible(double v, int divisor = 8);

class MobileNetV2 : public Model {
 public:
  MobileNetV2(int num_classes, float width_mult, bool cifar_stem, int in_channels = 3,
              float dropout = 0.2f, uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;
  // Segments: the stem, each of the 17 inverted-residual blocks, the head conv, the classifier.
  int num_segments() const override { return int(blocks_.size()) + 3; }
  Tensor forward_segment(int i, const Tensor& x) override;
  std::string name() const override { return cifar_ ? "mobilenet_v2_cifar" : "mobilenet_v2"; }
  std::vector<std::string> classifier_prefixes() const override { return {"classifier."}; }
  void set_batchnorm_sync(std::shared_ptr<const BatchNormSync> sync) override;
  // The blocks' expand and depthwise outputs (ConvBnActChain::recompute_hidden).
  void set_recompute_activations(bool on) override;
  // f32 or bf16: the input is cast at the stem, the head's output back to f32 before pooling.
  void set_activation_dtype(DType dtype) override;
  // BatchNorm folded into every convolution; each block's depthwise + projection fused.
  std::unique_ptr<InferenceNet> inference_net() override;
  // torchvision's graph with BatchNorm folded, named after its modules (features.N...).
  InferenceGraph inference_graph(int height, int width) const override;
  int last_channel() const { return last_channel_; }

 private:
  ConvBnAct add_conv_bn(const std::string& prefix, ConvKind kind, int in, int out, int kernel,
                        int stride);
  bool cifar_;
  int in_channels_, last_channel_;
  float dropout_;
  ConvBnAct stem_, head_;
  std::vector<InvertedResidual> blocks_;
  Tensor fc_w_, fc_b_;
};

}  // namespace osprey::models
