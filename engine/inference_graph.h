// A model's inference form as a graph of standard operators, for writers of exchange formats
// (interop/onnx_export): no file format and no model here. The graph sees what PyTorch and ONNX
// see, not Osprey's internal layouts: activations NCHW, convolution weights OIHW
// ([K][C/groups][KH][KW]), linear weights [out][in] with a flattened input in C,H,W order.
// BatchNorm is already folded into the convolutions (engine/folded_layers.h).
#pragma once
#include <string>
#include <vector>

#include "engine/folded_layers.h"
#include "engine/param_store.h"
#include "engine/tensor.h"

namespace osprey {

enum class GraphOp {
  conv,             // weight, bias, stride, pad (all four sides), groups
  relu,             // max(x, 0)
  relu6,            // min(max(x, 0), 6)
  max_pool,         // kernel x kernel window, stride, no padding, floor rounding
  global_avg_pool,  // [N,C,H,W] -> [N,C,1,1]
  flatten,          // [N,...] -> [N, product of the rest], row-major
  linear,           // [N,in] -> [N,out]: x weight^T + bias
  add,              // inputs[0] + inputs[1], of one shape
};

struct GraphNode {
  GraphOp op = GraphOp::relu;
  std::string name;  // unique in the graph; also the name of the node's one output tensor
  std::vector<std::string> inputs;
  Tensor weight, bias;  // conv, linear: f32 on the cpu, PyTorch layouts
  int stride = 1, pad = 0, groups = 1, kernel = 0;
};

// Built front to back: every method appends one node reading tensors already defined and
// returns the name of its output, which later nodes read.
class InferenceGraph {
 public:
  // input: [N, channels, height, width], N free.
  InferenceGraph(std::string model_name, int channels, int height, int width, int classes);

  std::string conv(const std::string& name, const std::string& x, const Tensor& torch_weight,
                   const Tensor& bias, int stride, int pad, int groups = 1);
  // A folded Osprey layer (its weight in Osprey's layout) and its activation: name is the
  // convolution's, the activation node is name + ".relu" / ".relu6".
  std::string conv_act(const std::string& name, const std::string& x, const FoldedConvAct& l);
  std::string relu(const std::string& name, const std::string& x);
  std::string relu6(const std::string& name, const std::string& x);
  std::string max_pool(const std::string& name, const std::string& x, int kernel, int stride);
  std::string global_avg_pool(const std::string& name, const std::string& x);
  std::string flatten(const std::string& name, const std::string& x);
  std::string linear(const std::string& name, const std::string& x, const Tensor& weight,
                     const Tensor& bias);
  std::string add(const std::string& name, const std::string& a, const std::string& b);
  // The graph's output, [N, classes] logits; the graph is complete once it is set.
  void set_output(const std::string& name);

  const std::string& model_name() const { return model_name_; }
  int channels() const { return channels_; }
  int height() const { return height_; }
  int width() const { return width_; }
  int classes() const { return classes_; }
  static constexpr const char* input_name() { return "input"; }
  const std::string& output() const { return output_; }
  const std::vector<GraphNode>& nodes() const { return nodes_; }

 private:
  std::string append(GraphNode node);
  std::string model_name_;
  int channels_, height_, width_, classes_;
  std::vector<GraphNode> nodes_;
  std::vector<std::string> defined_;  // tensor names so far, the input first
  std::string output_;
};

// A tensor laid out as a parameter of this layout in Osprey (conv_ohwi, depthwise_hwc,
// linear_hwc_input with input_chw) in PyTorch's layout and shape, on the cpu.
Tensor to_torch_layout(const Tensor& ours, TorchLayout layout, const Shape& input_chw = {});

}  // namespace osprey
