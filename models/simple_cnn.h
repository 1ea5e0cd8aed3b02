// The small CNN of the seed project: conv3x3(in->32) ReLU maxpool2, conv3x3(32->64) ReLU
// maxpool2, flatten, fc(->128) ReLU, fc(->classes). Names and PyTorch layouts as in
// tests/golden/README.md; fc1 reads the NHWC flatten, so its weight converts from C,H,W order.
#pragma once
#include "engine/model.h"

namespace osprey::models {

class SimpleCnn : public Model {
 public:
  SimpleCnn(int in_channels, int height, int width, int num_classes, uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "simple_cnn"; }
  std::vector<std::string> classifier_prefixes() const override { return {"fc2."}; }
  InferenceGraph inference_graph(int height, int width) const override;

 private:
  int in_channels_, height_, width_;
  Tensor conv1_w_, conv1_b_, conv2_w_, conv2_b_, fc1_w_, fc1_b_, fc2_w_, fc2_b_;
};

}  // namespace osprey::models
