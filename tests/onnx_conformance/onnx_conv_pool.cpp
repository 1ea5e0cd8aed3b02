// Conv, MaxPool, GlobalAveragePool and BatchNormalization: the ops with a channel axis, run in
// Osprey's channels-last layout.
#include <algorithm>

#include "engine/batch_norm.h"
#include "engine/ops.h"
#include "tests/onnx_conformance/layout.h"
#include "tests/onnx_conformance/node_attrs.h"

namespace osprey::conformance {

namespace {

// A window's settings with auto_pad resolved into explicit pads (ONNX's begin..., end... order).
struct Window {
  std::vector<int64_t> kernel, strides, pads, dilations;
};

Window window_of(const NodeAttrs& attrs, const Tensor& x, const std::vector<int64_t>& kernel) {
  const size_t rank = kernel.size();
  Window w{kernel, attrs.ints("strides", std::vector<int64_t>(rank, 1)),
           attrs.ints("pads", std::vector<int64_t>(2 * rank, 0)),
           attrs.ints("dilations", std::vector<int64_t>(rank, 1))};
  const std::string auto_pad = attrs.s("auto_pad", "NOTSET");
  if (auto_pad == "VALID") std::fill(w.pads.begin(), w.pads.end(), 0);
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // ONNX: the output is ceil(in / stride); the extra padding goes at the end for SAME_UPPER.
    for (size_t d = 0; d < rank; ++d) {
      const int64_t in = x.dim(int(d) + 2), s = w.strides[d];
      const int64_t span = (kernel[d] - 1) * w.dilations[d] + 1;
      const int64_t total = std::max<int64_t>(0, ((in + s - 1) / s - 1) * s + span - in);
      const int64_t small = total / 2, large = total - small;
      w.pads[d] = auto_pad == "SAME_UPPER" ? small : large;
      w.pads[d + rank] = auto_pad == "SAME_UPPER" ? large : small;
    }
  }
  if (std::any_of(w.dilations.begin(), w.dilations.end(), [](int64_t d) { return d != 1; }))
    not_applicable("dilations ", list_str(w.dilations), ": Osprey's windows are not dilated");
  if (std::adjacent_find(w.strides.begin(), w.strides.end(), std::not_equal_to<>()) !=
      w.strides.end())
    not_applicable("strides ", list_str(w.strides), ": Osprey takes one stride for H and W");
  if (std::adjacent_find(w.pads.begin(), w.pads.end(), std::not_equal_to<>()) != w.pads.end())
    not_applicable("asymmetric padding ", list_str(w.pads), " (", auto_pad,
                   "): Osprey pads every side by one amount");
  return w;
}

std::vector<int64_t> spatial_dims(const Tensor& t) {
  return std::vector<int64_t>(t.shape().begin() + 2, t.shape().end());
}

void check_spatial_rank(const char* op, const Tensor& x, bool one_d_ok) {
  const int rank = x.ndim() - 2;
  if (rank == 1 && !one_d_ok) not_applicable("1-D ", op, ": Osprey's windows are 2-D and square");
  if (rank != 2 && rank != 1) not_applicable(rank, "-D ", op, ": Osprey's are 2-D");
}

}  // namespace

void run_conv(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  Tensor x = input(run, 0), w = input(run, 1);
  const Tensor bias = optional_input(run, 2);
  check_spatial_rank("convolution", x, true);
  const Window win = window_of(attrs, x, spatial_dims(w));
  const bool one_d = x.ndim() == 3;
  if (one_d) {
    // A 1-D convolution is a 2-D one of height 1, as long as nothing pads that height.
    if (win.pads[0] != 0)
      not_applicable("padded 1-D convolution: as 2-D of height 1 Osprey would pad the height ",
                     "too (one padding for H and W)");
    x = x.view({x.dim(0), x.dim(1), 1, x.dim(2)});
    w = w.view({w.dim(0), w.dim(1), 1, w.dim(2)});
  }
  const int stride = int(win.strides[0]), pad = int(win.pads[0]);
  const int64_t group = attrs.i("group", 1), channels = x.dim(1), filters = w.dim(0);
  Tensor y;
  if (group == 1) {
    y = ops::conv2d(on(run, channels_last(x)), on(run, channels_last(w)), on(run, bias), stride,
                    pad);
  } else if (group == channels && filters == channels) {
    // OIHW with I == 1 -> Osprey's depthwise [KH][KW][C].
    const Tensor dw = permute(w.view({filters, w.dim(2), w.dim(3)}), {1, 2, 0});
    y = ops::depthwise_conv2d(on(run, channels_last(x)), on(run, dw), on(run, bias), stride, pad);
  } else if (group == channels) {
    not_applicable("depthwise with channel multiplier ", filters / channels, " (group ", group,
                   ", ", filters,
                   " filters): Osprey's depthwise_conv2d has one filter per channel");
  } else {
    not_applicable("grouped convolution (group ", group, " of ", channels,
                   " channels): Osprey's convolutions are dense or depthwise (group = channels)");
  }
  y = channels_first(host(y));
  run.outputs = {one_d ? y.view({y.dim(0), y.dim(1), y.dim(3)}) : y};
}

void run_max_pool(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only(
      {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
  if (wants_output(run, 1)) not_applicable("Indices output: Osprey's max_pool2d returns none");
  const Tensor x = input(run, 0);
  check_spatial_rank("pooling", x, false);
  if (attrs.i("ceil_mode", 0)) not_applicable("ceil_mode: Osprey's output sizes round down");
  const Window win = window_of(attrs, x, attrs.ints("kernel_shape", {}));
  if (win.kernel.size() != 2 || win.kernel[0] != win.kernel[1])
    not_applicable("kernel ", list_str(win.kernel), ": Osprey's max_pool2d window is square");
  const int kernel = int(win.kernel[0]), stride = int(win.strides[0]), pad = int(win.pads[0]);
  if (2 * pad > kernel)
    not_applicable("padding ", pad, " over half the kernel ", kernel,
                   ": Osprey's max_pool2d (as PyTorch's) needs pad <= kernel / 2");
  const Tensor y = ops::max_pool2d(on(run, channels_last(x)), kernel, stride, pad);
  run.outputs = {channels_first(host(y))};
}

void run_global_average_pool(NodeRun& run) {
  NodeAttrs(run.node).only({});
  const Tensor x = input(run, 0);
  if (x.ndim() != 4) not_applicable(x.ndim() - 2, "-D input: Osprey's global_avg_pool is 2-D");
  const Tensor y = host(ops::global_avg_pool(on(run, channels_last(x))));
  run.outputs = {y.view({y.dim(0), y.dim(1), 1, 1})};
}

void run_batch_norm(NodeRun& run) {
  const NodeAttrs attrs(run.node);
  attrs.only({"epsilon", "momentum", "training_mode", "is_test", "spatial"});
  if (attrs.i("spatial", 1) != 1) not_applicable("spatial=0: Osprey's statistics are per channel");
  // Opset 14 made training an attribute; before, a node in training mode asks for the batch
  // statistics as further outputs.
  const bool training = run.opset >= 14 ? attrs.i("training_mode", 0) != 0 : wants_output(run, 1);
  if (training && run.opset < 14)
    not_applicable("training mode before opset 14 (saved mean and variance outputs)");
  BatchNorm bn;
  bn.gamma = on(run, input(run, 1));
  bn.beta = on(run, input(run, 2));
  // Updated in place in training mode: copies, so the case's inputs stay as read.
  bn.running_mean = on(run, input(run, 3).clone());
  bn.running_var = on(run, input(run, 4).clone());
  bn.eps = attrs.f("epsilon", 1e-5f);
  // ONNX's momentum weighs the old running value, PyTorch's (Osprey's) the batch statistic.
  bn.momentum = 1.0f - attrs.f("momentum", 0.9f);
  const Tensor y = ops::batch_norm(on(run, channels_last(input(run, 0))), bn, training);
  run.outputs = {channels_first(host(y))};
  if (!training) return;
  run.outputs.push_back(host(bn.running_mean));
  run.outputs.push_back(host(bn.running_var));
  run.unchecked = {"", "",
                   "ONNX updates running_var with the biased batch variance, Osprey (as "
                   "PyTorch) with the unbiased one"};
}

}  // namespace osprey::conformance
