#include "models/simple_cnn.h"

#include "engine/inference_graph.h"
#include "engine/init.h"
#include "engine/ops.h"

namespace osprey::models {

SimpleCnn::SimpleCnn(int in_channels, int height, int width, int num_classes, uint64_t seed)
    : in_channels_(in_channels), height_(height), width_(width) {
  OSPREY_CHECK(in_channels >= 1 && num_classes >= 1, "simple_cnn: need at least one input channel",
               " and one class, got ", in_channels, " and ", num_classes);
  OSPREY_CHECK(height >= 4 && width >= 4, "simple_cnn: input ", height, "x", width,
               " is smaller than 4x4 (two 2x2 poolings)");
  int h2 = height / 2 / 2, w2 = width / 2 / 2;
  conv1_w_ = params_.add("conv1.weight", {32, 3, 3, in_channels}, TorchLayout::conv_ohwi);
  conv1_b_ = params_.add("conv1.bias", {32});
  conv2_w_ = params_.add("conv2.weight", {64, 3, 3, 32}, TorchLayout::conv_ohwi);
  conv2_b_ = params_.add("conv2.bias", {64});
  fc1_w_ =
      params_.add("fc1.weight", {128, 64 * h2 * w2}, TorchLayout::linear_hwc_input, {64, h2, w2});
  fc1_b_ = params_.add("fc1.bias", {128});
  fc2_w_ = params_.add("fc2.weight", {num_classes, 128});
  fc2_b_ = params_.add("fc2.bias", {num_classes});
  params_.finalize();

  Rng rng(seed);
  init::torch_default(conv1_w_, conv1_b_, 9 * in_channels, rng);
  init::torch_default(conv2_w_, conv2_b_, 9 * 32, rng);
  init::torch_default(fc1_w_, fc1_b_, 64 * h2 * w2, rng);
  init::torch_default(fc2_w_, fc2_b_, 128, rng);
}

Tensor SimpleCnn::forward(const Tensor& x) {
  OSPREY_CHECK(
      x.ndim() == 4 && x.dim(1) == height_ && x.dim(2) == width_ && x.dim(3) == in_channels_,
      "simple_cnn built for ", height_, "x", width_, "x", in_channels_,
      " (NHWC) inputs got a batch of shape ", shape_str(x.shape()));
  // PyTorch's relu then 2x2 max-pool, as pool then relu: max and relu commute (values and
  // gradients alike, ties included), and the relu then runs on a quarter of the pixels.
  Tensor h = ops::relu(ops::conv2d_max_pool2d(x, conv1_w_, conv1_b_, 1, 2));
  h = ops::relu(ops::max_pool2d(ops::conv2d(h, conv2_w_, conv2_b_, 1, 1), 2, 2));
  h = ops::relu(ops::linear(ops::flatten(h), fc1_w_, fc1_b_));
  return ops::linear(h, fc2_w_, fc2_b_);
}

InferenceGraph SimpleCnn::inference_graph(int height, int width) const {
  OSPREY_CHECK(height == height_ && width == width_, "simple_cnn built for ", height_, "x", width_,
               " inputs has no graph for ", height, "x", width);
  InferenceGraph g(name(), in_channels_, height_, width_, int(fc2_w_.dim(0)));
  // PyTorch's order, relu before pool (forward's swap is only faster); fc1 reads the C,H,W
  // flatten.
  std::string h = g.conv("conv1", g.input_name(), to_torch_layout(conv1_w_, TorchLayout::conv_ohwi),
                         conv1_b_, 1, 1);
  h = g.max_pool("pool1", g.relu("conv1.relu", h), 2, 2);
  h = g.conv("conv2", h, to_torch_layout(conv2_w_, TorchLayout::conv_ohwi), conv2_b_, 1, 1);
  h = g.flatten("flatten", g.max_pool("pool2", g.relu("conv2.relu", h), 2, 2));
  const Shape chw{conv2_w_.dim(0), height_ / 2 / 2, width_ / 2 / 2};
  h = g.relu(
      "fc1.relu",
      g.linear("fc1", h, to_torch_layout(fc1_w_, TorchLayout::linear_hwc_input, chw), fc1_b_));
  g.set_output(g.linear("fc2", h, fc2_w_, fc2_b_));
  return g;
}

}  // namespace osprey::models
