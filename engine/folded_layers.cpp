#include "engine/folded_layers.h"

#include <cmath>

#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/depthwise_project.h"

#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/conv.h"
#include "kernels/cuda/depthwise.h"
#include "kernels/cuda/depthwise_project.h"
#include "kernels/cuda/elementwise.h"
#endif

namespace osprey {
namespace {

// Per output channel: scale = gamma / sqrt(var + eps) and bias = beta - mean * scale, in
// double, from the running statistics.
struct BatchNormFold {
  std::vector<double> scale, bias;
};

BatchNormFold batchnorm_fold(const ConvBnAct& l) {
  const std::vector<float> gamma = l.gamma.to_vector(), beta = l.beta.to_vector();
  const std::vector<float> mean = l.running_mean.to_vector(), var = l.running_var.to_vector();
  OSPREY_CHECK(
      gamma.size() == beta.size() && gamma.size() == mean.size() && gamma.size() == var.size(),
      "fold_batchnorm: BatchNorm parameters and statistics of different sizes");
  BatchNormFold f;
  for (size_t k = 0; k < gamma.size(); ++k) {
    const double s = double(gamma[k]) / std::sqrt(double(var[k]) + double(l.eps));
    f.scale.push_back(s);
    f.bias.push_back(double(beta[k]) - double(mean[k]) * s);
  }
  return f;
}

Tensor to_tensor(const Shape& shape, const std::vector<double>& v, Device device) {
  return Tensor::from_data(shape, std::vector<float>(v.begin(), v.end())).to(device);
}

void check_input(const Tensor& x, const Tensor& weight, const char* op) {
  OSPREY_CHECK(x.ndim() == 4 && x.dtype() == DType::f32, op, ": input ", shape_str(x.shape()),
               " is not an f32 NHWC batch");
  OSPREY_CHECK(weight.device() == x.device(), op, ": input on ", device_name(x.device()),
               " but the folded weights are on ", device_name(weight.device()));
}

DepthwiseShape depthwise_shape(const Tensor& x, const FoldedConvAct& l) {
  OSPREY_CHECK(l.weight.dim(2) == x.dim(3), "folded depthwise: weight ",
               shape_str(l.weight.shape()), " is for ", l.weight.dim(2), " channels, input has ",
               x.dim(3));
  DepthwiseShape s{int(x.dim(0)),        int(x.dim(1)),        int(x.dim(2)), int(x.dim(3)),
                   int(l.weight.dim(0)), int(l.weight.dim(1)), l.stride,      l.pad};
  OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "folded depthwise: input ", shape_str(x.shape()),
               " is too small for the kernel");
  return s;
}

}  // namespace

FoldedConvAct fold_batchnorm(const ConvBnAct& l) {
  const BatchNormFold f = batchnorm_fold(l);
  std::vector<float> w = l.weight.to_vector();
  const size_t k = f.scale.size();
  std::vector<double> folded(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    // dense [K][KH][KW][C]: channel = i / (KH*KW*C); depthwise [KH][KW][C]: channel = i % C.
    const size_t ch = l.kind == ConvKind::dense ? i / (w.size() / k) : i % k;
    folded[i] = double(w[i]) * f.scale[ch];
  }
  FoldedConvAct out;
  out.kind = l.kind;
  out.weight = to_tensor(l.weight.shape(), folded, l.weight.device());
  out.bias = to_tensor({int64_t(k)}, f.bias, l.weight.device());
  out.stride = l.stride, out.pad = l.pad, out.act = l.act;
  return out;
}

FoldedDepthwiseSeparable fold_batchnorm(const ConvBnAct& dw, const ConvBnAct& proj) {
  OSPREY_CHECK(dw.kind == ConvKind::depthwise && proj.kind == ConvKind::dense &&
                   proj.weight.dim(1) == 1 && proj.weight.dim(2) == 1 && proj.stride == 1 &&
                   proj.act == Activation::none,
               "fold_batchnorm: not a depthwise layer and a 1x1 projection without activation");
  FoldedDepthwiseSeparable out;
  out.depthwise = fold_batchnorm(dw);
  const BatchNormFold f = batchnorm_fold(proj);
  const std::vector<float> w = proj.weight.to_vector();  // [K][1][1][C]
  const int64_t k = proj.weight.dim(0), c = proj.weight.dim(3);
  std::vector<double> wt(w.size());
  for (int64_t o = 0; o < k; ++o)
    for (int64_t ch = 0; ch < c; ++ch)
      wt[size_t(ch * k + o)] = double(w[size_t(o * c + ch)]) * f.scale[size_t(o)];
  out.pointwise_weight = to_tensor({c, k}, wt, proj.weight.device());
  out.pointwise_bias = to_tensor({k}, f.bias, proj.weight.device());
  return out;
}

namespace ops {

Tensor folded_conv_act(const Tensor& x, const FoldedConvAct& l) {
  check_input(x, l.weight, "folded_conv_act");
  const Device device = x.device();
  Tensor y;
  if (l.kind == ConvKind::dense) {
    OSPREY_CHECK(l.weight.dim(3) == x.dim(3), "folded conv: weight ", shape_str(l.weight.shape()),
                 " expects ", l.weight.dim(3), " channels, input has ", x.dim(3));
    Conv2dShape s{int(x.dim(0)),
                  int(x.dim(1)),
                  int(x.dim(2)),
                  int(x.dim(3)),
                  int(l.weight.dim(0)),
                  int(l.weight.dim(1)),
                  int(l.weight.dim(2)),
                  l.stride,
                  l.pad};
    OSPREY_CHECK(s.oh() > 0 && s.ow() > 0, "folded conv: input ", shape_str(x.shape()),
                 " is too small for the kernel");
    y = Tensor::empty({s.n, s.oh(), s.ow(), s.k}, DType::f32, device);
    profiler::Scope profile(s.kh == 1 ? "inference conv 1x1" : "inference conv");
    OSPREY_DISPATCH(device, conv2d_forward, s, x.ptr<float>(), l.weight.ptr<float>(),
                    l.bias.ptr<float>(), y.ptr<float>());
  } else {
    const DepthwiseShape s = depthwise_shape(x, l);
    y = Tensor::empty({s.n, s.oh(), s.ow(), s.c}, DType::f32, device);
    profiler::Scope profile("inference depthwise");
    OSPREY_DISPATCH(device, depthwise_conv2d_forward, s, x.ptr<float>(), l.weight.ptr<float>(),
                    l.bias.ptr<float>(), y.ptr<float>());
  }
  if (l.act != Activation::none) {
    profiler::Scope profile("inference activation");
    OSPREY_DISPATCH(device, activation_forward, y.numel(), l.act, y.ptr<float>(), y.ptr<float>());
  }
  return y;
}

Tensor folded_depthwise_separable(const Tensor& x, const FoldedDepthwiseSeparable& layers,
                                  const Tensor& skip) {
  check_input(x, layers.depthwise.weight, "folded_depthwise_separable");
  const DepthwiseShape s = depthwise_shape(x, layers.depthwise);
  const int k = int(layers.pointwise_weight.dim(1));
  OSPREY_CHECK(layers.pointwise_weight.dim(0) == s.c, "folded_depthwise_separable: projection ",
               shape_str(layers.pointwise_weight.shape()), " does not take ", s.c, " channels");
  Tensor y = Tensor::empty({s.n, s.oh(), s.ow(), k}, DType::f32, x.device());
  const float* residual = nullptr;
  if (skip.defined()) {
    OSPREY_CHECK(
        skip.shape() == y.shape() && skip.dtype() == DType::f32 && skip.device() == x.device(),
        "folded_depthwise_separable: skip connection from ", shape_str(skip.shape()), " to ",
        shape_str(y.shape()));
    residual = skip.ptr<float>();
  }
  profiler::Scope profile("inference depthwise+project");
  OSPREY_DISPATCH(x.device(), depthwise_project_forward, s, k, x.ptr<float>(),
                  layers.depthwise.weight.ptr<float>(), layers.depthwise.bias.ptr<float>(),
                  layers.depthwise.act, layers.pointwise_weight.ptr<float>(),
                  layers.pointwise_bias.ptr<float>(), residual, y.ptr<float>());
  return y;
}

}  // namespace ops
}  // namespace osprey
