#include "models/mobilenet_v2.h"

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/inference_graph.h"
#include "engine/init.h"
#include "engine/ops.h"

namespace osprey::models {
namespace {

class FoldedMobileNetV2 : public InferenceNet {
 public:
  FoldedMobileNetV2(const ConvBnAct& stem, const std::vector<InvertedResidual>& blocks,
                    const ConvBnAct& head, const Tensor& fc_w, const Tensor& fc_b)
      : stem_(fold_batchnorm(stem)),
        head_(fold_batchnorm(head)),
        fc_w_(fc_w.clone()),
        fc_b_(fc_b.clone()) {
    for (const InvertedResidual& b : blocks) blocks_.push_back(fold_inverted_residual(b));
  }
  Tensor forward(const Tensor& x) override {
    autograd::NoGradGuard no_grad;
    Tensor h = ops::folded_conv_act(x, stem_);
    for (const FoldedInvertedResidual& b : blocks_) h = folded_inverted_residual(h, b);
    h = ops::folded_conv_act(h, head_);
    return ops::linear(ops::global_avg_pool(h), fc_w_, fc_b_);
  }

 private:
  FoldedConvAct stem_, head_;
  std::vector<FoldedInvertedResidual> blocks_;
  Tensor fc_w_, fc_b_;
};

}  // namespace

int make_divisible(double v, int divisor) {
  int new_v = std::max(divisor, int(v + divisor / 2.0) / divisor * divisor);
  if (new_v < 0.9 * v) new_v += divisor;  // do not round down by more than 10%
  return new_v;
}

ConvBnAct MobileNetV2::add_conv_bn(const std::string& prefix, ConvKind kind, int in, int out,
                                   int kernel, int stride) {
  // prefix names the Sequential holding [conv, bn(, act)] in torchvision, e.g. "features.0";
  // a project layer (no activation) is two separate Sequential entries, given as "a|b".
  std::string conv_name = prefix + ".0", bn_name = prefix + ".1";
  auto bar = prefix.find('|');
  if (bar != std::string::npos) conv_name = prefix.substr(0, bar), bn_name = prefix.substr(bar + 1);
  ConvBnAct l;
  l.kind = kind;
  l.stride = stride;
  l.pad = (kernel - 1) / 2;
  if (kind == ConvKind::dense)
    l.weight =
        params_.add(conv_name + ".weight", {out, kernel, kernel, in}, TorchLayout::conv_ohwi);
  else
    l.weight =
        params_.add(conv_name + ".weight", {kernel, kernel, out}, TorchLayout::depthwise_hwc);
  l.gamma = params_.add(bn_name + ".weight", {out});
  l.beta = params_.add(bn_name + ".bias", {out});
  l.running_mean = params_.add_buffer(bn_name + ".running_mean", {out});
  l.running_var = params_.add_buffer(bn_name + ".running_var", {out});
  l.num_batches_tracked = params_.add_buffer(bn_name + ".num_batches_tracked", {}, DType::i64);
  init::constant(l.running_var, 1.0f);
  return l;
}

MobileNetV2::MobileNetV2(int num_classes, float width_mult, bool cifar_stem, int in_channels,
                         float dropout, uint64_t seed)
    : cifar_(cifar_stem), in_channels_(in_channels), dropout_(dropout) {
  OSPREY_CHECK(num_classes >= 1 && width_mult > 0 && in_channels >= 1,
               "mobilenet_v2: need classes >= 1, width > 0 and input channels >= 1");
  OSPREY_CHECK(dropout >= 0 && dropout < 1, "mobilenet_v2: dropout ", dropout, " not in [0, 1)");
  struct Setting {
    int t, c, n, s;
  };
  const Setting settings[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int input_channel = make_divisible(32 * width_mult);
  last_channel_ = make_divisible(1280 * std::max(1.0f, width_mult));

  stem_ =
      add_conv_bn("features.0", ConvKind::dense, in_channels, input_channel, 3, cifar_stem ? 1 : 2);
  end_segment();
  int feature = 1;
  for (const Setting& st : settings) {
    int out = make_divisible(st.c * width_mult);
    for (int i = 0; i < st.n; ++i, ++feature) {
      int stride = i == 0 ? st.s : 1;
      // torchvision decides the skip connection from the constructed stride; the CIFAR variant
      // changes features[2].conv[1][0].stride to 1 afterwards, which leaves that block without
      // a skip even when its input and output widths agree (widths <= 0.35).
      bool residual = stride == 1 && input_channel == out;
      if (cifar_stem && feature == 2) stride = 1;
      int hidden = int(std::lround(input_channel * st.t));
      std::string p = "features." + std::to_string(feature) + ".conv.";
      InvertedResidual block;
      int idx = 0;
      if (st.t != 1)
        block.layers.push_back(
            add_conv_bn(p + std::to_string(idx++), ConvKind::dense, input_channel, hidden, 1, 1));
      block.layers.push_back(
          add_conv_bn(p + std::to_string(idx++), ConvKind::depthwise, hidden, hidden, 3, stride));
      ConvBnAct project = add_conv_bn(p + std::to_string(idx) + "|" + p + std::to_string(idx + 1),
                                      ConvKind::dense, hidden, out, 1, 1);
      project.act = Activation::none;
      block.layers.push_back(project);
      block.residual = residual;
      blocks_.push_back(block);
      end_segment();
      input_channel = out;
    }
  }
  head_ = add_conv_bn("features." + std::to_string(feature), ConvKind::dense, input_channel,
                      last_channel_, 1, 1);
  end_segment();
  fc_w_ = params_.add("classifier.1.weight", {num_classes, last_channel_});
  fc_b_ = params_.add("classifier.1.bias", {num_classes});
  end_segment();
  params_.finalize();

  // torchvision: kaiming_normal_(fan_out) for convs, BN weight 1 / bias 0, Linear N(0, 0.01).
  Rng rng(seed);
  for (const Parameter& p : params_.params()) {
    const Shape& s = p.value.shape();
    if (p.layout == TorchLayout::conv_ohwi)
      init::normal(p.value, 0.0, std::sqrt(2.0 / double(s[0] * s[1] * s[2])), rng);
    else if (p.layout == TorchLayout::depthwise_hwc)  // fan_out = out/groups * kh * kw
      init::normal(p.value, 0.0, std::sqrt(2.0 / double(s[0] * s[1])), rng);
  }
  auto init_bn = [](const ConvBnAct& l) {
    init::constant(l.gamma, 1.0f);
    init::constant(l.beta, 0.0f);
  };
  init_bn(stem_);
  init_bn(head_);
  for (const InvertedResidual& b : blocks_)
    for (const ConvBnAct& l : b.layers) init_bn(l);
  init::normal(fc_w_, 0.0, 0.01, rng);
  init::constant(fc_b_, 0.0f);
}

void MobileNetV2::set_batchnorm_sync(std::shared_ptr<const BatchNormSync> sync) {
  stem_.sync = sync;
  head_.sync = sync;
  for (InvertedResidual& b : blocks_)
    for (ConvBnAct& l : b.layers) l.sync = sync;
}

void MobileNetV2::set_activation_dtype(DType dtype) {
  OSPREY_CHECK(dtype == DType::f32 || dtype == DType::bf16, name(), ": activations are f32 or ",
               "bf16, not ", dtype_name(dtype));
  activation_dtype_ = dtype;
}

void MobileNetV2::set_recompute_activations(bool on) {
  for (InvertedResidual& b : blocks_) b.recompute_hidden = on;
}

std::unique_ptr<InferenceNet> MobileNetV2::inference_net() {
  return std::make_unique<FoldedMobileNetV2>(stem_, blocks_, head_, fc_w_, fc_b_);
}

InferenceGraph MobileNetV2::inference_graph(int height, int width) const {
  InferenceGraph g(name(), in_channels_, height, width, int(fc_w_.dim(0)));
  std::string h = g.conv_act("features.0", g.input_name(), fold_batchnorm(stem_));
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const std::string prefix = "features." + std::to_string(b + 1) + ".conv.";
    const std::string block_input = h;
    const std::vector<ConvBnAct>& layers = blocks_[b].layers;
    for (size_t j = 0; j < layers.size(); ++j)
      h = g.conv_act(prefix + std::to_string(j), h, fold_batchnorm(layers[j]));
    if (blocks_[b].residual)
      h = g.add("features." + std::to_string(b + 1) + ".add", block_input, h);
  }
  h = g.conv_act("features." + std::to_string(blocks_.size() + 1), h, fold_batchnorm(head_));
  h = g.flatten("flatten", g.global_avg_pool("pool", h));
  g.set_output(g.linear("classifier.1", h, fc_w_, fc_b_));
  return g;
}

Tensor MobileNetV2::forward(const Tensor& x) {
  Tensor h = x;
  for (int i = 0; i < num_segments(); ++i) h = forward_segment(i, h);
  return h;
}

Tensor MobileNetV2::forward_segment(int i, const Tensor& x) {
  const int blocks = int(blocks_.size());
  OSPREY_CHECK(i >= 0 && i < num_segments(), name(), " has no segment ", i);
  if (i == 0) {
    OSPREY_CHECK(x.ndim() == 4 && x.dim(3) == in_channels_, name(), " expects NHWC inputs with ",
                 in_channels_, " channels, got ", shape_str(x.shape()));
    return ops::conv_bn_act(ops::cast(x, activation_dtype_), stem_, training_);
  }
  if (i <= blocks) return ops::conv_bn_act_chain(x, blocks_[size_t(i - 1)], training_);
  if (i == blocks + 1) return ops::conv_bn_act(x, head_, training_);
  Tensor h =
      ops::dropout(ops::global_avg_pool(ops::cast(x, DType::f32)), dropout_, training_, rng_);
  return ops::linear(h, fc_w_, fc_b_);
}

}  // namespace osprey::models
