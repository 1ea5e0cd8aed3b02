#include "engine/inference_graph.h"

#include <algorithm>
#include <utility>

namespace osprey {

Tensor to_torch_layout(const Tensor& ours, TorchLayout layout, const Shape& input_chw) {
  Parameter p;
  p.value = ours.to(Device::cpu);
  p.layout = layout;
  p.input_chw = input_chw;
  Tensor out = Tensor::empty(p.torch_shape());
  p.to_torch(out.data<float>());
  return out;
}

InferenceGraph::InferenceGraph(std::string model_name, int channels, int height, int width,
                               int classes)
    : model_name_(std::move(model_name)),
      channels_(channels),
      height_(height),
      width_(width),
      classes_(classes) {
  OSPREY_CHECK(channels >= 1 && height >= 1 && width >= 1 && classes >= 1, model_name_,
               ": an inference graph needs positive input sizes and classes");
  defined_.push_back(input_name());
}

namespace {

GraphNode make_node(GraphOp op, const std::string& name, std::vector<std::string> inputs) {
  GraphNode n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  return n;
}

}  // namespace

std::string InferenceGraph::append(GraphNode node) {
  OSPREY_CHECK(output_.empty(), model_name_, ": node '", node.name,
               "' added after the graph's output was set");
  OSPREY_CHECK(std::find(defined_.begin(), defined_.end(), node.name) == defined_.end(),
               model_name_, ": two tensors named '", node.name, "' in the inference graph");
  for (const std::string& in : node.inputs)
    OSPREY_CHECK(std::find(defined_.begin(), defined_.end(), in) != defined_.end(), model_name_,
                 ": node '", node.name, "' reads '", in, "', which no earlier node defines");
  for (Tensor* t : {&node.weight, &node.bias})
    if (t->defined()) *t = t->to(Device::cpu).clone();
  defined_.push_back(node.name);
  nodes_.push_back(std::move(node));
  return nodes_.back().name;
}

std::string InferenceGraph::conv(const std::string& name, const std::string& x,
                                 const Tensor& torch_weight, const Tensor& bias, int stride,
                                 int pad, int groups) {
  OSPREY_CHECK(torch_weight.ndim() == 4 && bias.ndim() == 1 && bias.dim(0) == torch_weight.dim(0),
               model_name_, ": conv '", name, "' has weight ", shape_str(torch_weight.shape()),
               " and bias ", shape_str(bias.shape()));
  GraphNode n = make_node(GraphOp::conv, name, {x});
  n.weight = torch_weight;
  n.bias = bias;
  n.stride = stride, n.pad = pad, n.groups = groups;
  return append(std::move(n));
}

std::string InferenceGraph::conv_act(const std::string& name, const std::string& x,
                                     const FoldedConvAct& l) {
  const bool depthwise = l.kind == ConvKind::depthwise;
  const Tensor w =
      to_torch_layout(l.weight, depthwise ? TorchLayout::depthwise_hwc : TorchLayout::conv_ohwi);
  const std::string y =
      conv(name, x, w, l.bias, l.stride, l.pad, depthwise ? int(l.weight.dim(2)) : 1);
  switch (l.act) {
    case Activation::none:
      return y;
    case Activation::relu:
      return relu(name + ".relu", y);
    case Activation::relu6:
      return relu6(name + ".relu6", y);
  }
  return y;
}

std::string InferenceGraph::relu(const std::string& name, const std::string& x) {
  return append(make_node(GraphOp::relu, name, {x}));
}

std::string InferenceGraph::relu6(const std::string& name, const std::string& x) {
  return append(make_node(GraphOp::relu6, name, {x}));
}

std::string InferenceGraph::max_pool(const std::string& name, const std::string& x, int kernel,
                                     int stride) {
  GraphNode n = make_node(GraphOp::max_pool, name, {x});
  n.kernel = kernel, n.stride = stride;
  return append(std::move(n));
}

std::string InferenceGraph::global_avg_pool(const std::string& name, const std::string& x) {
  return append(make_node(GraphOp::global_avg_pool, name, {x}));
}

std::string InferenceGraph::flatten(const std::string& name, const std::string& x) {
  return append(make_node(GraphOp::flatten, name, {x}));
}

std::string InferenceGraph::linear(const std::string& name, const std::string& x,
                                   const Tensor& weight, const Tensor& bias) {
  OSPREY_CHECK(weight.ndim() == 2 && bias.ndim() == 1 && bias.dim(0) == weight.dim(0), model_name_,
               ": linear '", name, "' has weight ", shape_str(weight.shape()), " and bias ",
               shape_str(bias.shape()));
  GraphNode n = make_node(GraphOp::linear, name, {x});
  n.weight = weight;
  n.bias = bias;
  return append(std::move(n));
}

std::string InferenceGraph::add(const std::string& name, const std::string& a,
                                const std::string& b) {
  return append(make_node(GraphOp::add, name, {a, b}));
}

void InferenceGraph::set_output(const std::string& name) {
  OSPREY_CHECK(
      std::find(defined_.begin(), defined_.end(), name) != defined_.end() && name != input_name(),
      model_name_, ": the graph's output '", name, "' is no node's");
  output_ = name;
}

}  // namespace osprey
