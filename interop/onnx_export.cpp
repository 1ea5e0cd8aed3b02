#include "interop/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <map>

#include "engine/parse.h"
#include "engine/safetensors.h"
#include "interop/onnx_tensor.h"

namespace osprey::interop {
namespace {

// Clip's bounds for every ReLU6 of the graph: two scalar initializers shared by all of them.
constexpr const char* kRelu6Min = "relu6.min";
constexpr const char* kRelu6Max = "relu6.max";

void add_ints(onnx::NodeProto& node, const std::string& name, std::vector<int64_t> values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void add_initializer(onnx::GraphProto& g, const Tensor& t, const std::string& name) {
  *g.add_initializer() = tensor_to_proto(t, name);
}

// A float tensor value of shape [N, dims...], N named "N" (free).
void set_batch_type(onnx::ValueInfoProto& v, const std::string& name,
                    const std::vector<int64_t>& dims) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// One ONNX node (and its weights, as initializers) for n; `onnx_name` maps graph tensor names
// to the names they have in the file.
void add_node(onnx::GraphProto& g, const GraphNode& n,
              const std::map<std::string, std::string>& onnx_name) {
  onnx::NodeProto* node = g.add_node();
  node->set_name(n.name);
  for (const std::string& in : n.inputs) node->add_input(onnx_name.at(in));
  node->add_output(onnx_name.at(n.name));
  switch (n.op) {
    case GraphOp::conv: {
      node->set_op_type("Conv");
      node->add_input(n.name + ".weight");
      node->add_input(n.name + ".bias");
      add_initializer(g, n.weight, n.name + ".weight");
      add_initializer(g, n.bias, n.name + ".bias");
      add_ints(*node, "kernel_shape", {n.weight.dim(2), n.weight.dim(3)});
      add_ints(*node, "strides", {n.stride, n.stride});
      add_ints(*node, "pads", {n.pad, n.pad, n.pad, n.pad});
      add_ints(*node, "dilations", {1, 1});
      add_int(*node, "group", n.groups);
      break;
    }
    case GraphOp::relu:
      node->set_op_type("Relu");
      break;
    case GraphOp::relu6:
      node->set_op_type("Clip");
      node->add_input(kRelu6Min);
      node->add_input(kRelu6Max);
      break;
    case GraphOp::max_pool:
      node->set_op_type("MaxPool");
      add_ints(*node, "kernel_shape", {n.kernel, n.kernel});
      add_ints(*node, "strides", {n.stride, n.stride});
      break;
    case GraphOp::global_avg_pool:
      node->set_op_type("GlobalAveragePool");
      break;
    case GraphOp::flatten:
      node->set_op_type("Flatten");
      add_int(*node, "axis", 1);
      break;
    case GraphOp::linear:
      node->set_op_type("Gemm");
      node->add_input(n.name + ".weight");
      node->add_input(n.name + ".bias");
      add_initializer(g, n.weight, n.name + ".weight");
      add_initializer(g, n.bias, n.name + ".bias");
      add_int(*node, "transB", 1);
      break;
    case GraphOp::add:
      node->set_op_type("Add");
      break;
  }
}

// The checker, then shape inference with types checked and node errors thrown: what Python's
// onnx.checker.check_model(model, full_check=True) does.
void check(const onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    fail("the ONNX model of ", what, " does not pass ONNX's checker: ", e.what());
  }
}

void write_tensor(const std::string& path, const Tensor& t, const std::string& name) {
  std::string bytes;
  OSPREY_CHECK(tensor_to_proto(t, name).SerializeToString(&bytes), "the tensor for '",
               printable(path), "' could not be serialized (over protobuf's 2 GiB limit?)");
  write_file_atomic(path, bytes);
}

}  // namespace

const char* onnx_output_name(const OnnxExportOptions& options) {
  return options.softmax ? "probabilities" : "logits";
}

onnx::ModelProto onnx_model(const InferenceGraph& graph, const OnnxExportOptions& options) {
  OSPREY_CHECK(!graph.output().empty(), graph.model_name(), ": the inference graph has no output");
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("osprey");
  model.set_producer_version(options.producer_version);
  model.set_doc_string(graph.model_name() + ", exported by osprey export --onnx");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  for (const auto& [key, value] : options.metadata) {
    onnx::StringStringEntryProto* p = model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }

  onnx::GraphProto& g = *model.mutable_graph();
  g.set_name(graph.model_name());
  set_batch_type(*g.add_input(), graph.input_name(),
                 {graph.channels(), graph.height(), graph.width()});
  std::map<std::string, std::string> onnx_name{{graph.input_name(), graph.input_name()}};
  bool relu6 = false;
  for (const GraphNode& n : graph.nodes()) {
    onnx_name[n.name] = n.name == graph.output() ? "logits" : n.name;
    relu6 = relu6 || n.op == GraphOp::relu6;
  }
  if (relu6) {
    add_initializer(g, Tensor::full({}, 0.0f), kRelu6Min);
    add_initializer(g, Tensor::full({}, 6.0f), kRelu6Max);
  }
  for (const GraphNode& n : graph.nodes()) add_node(g, n, onnx_name);
  if (options.softmax) {
    onnx::NodeProto* softmax = g.add_node();
    softmax->set_name("softmax");
    softmax->set_op_type("Softmax");
    softmax->add_input("logits");
    softmax->add_output(onnx_output_name(options));
    add_int(*softmax, "axis", 1);
  }
  set_batch_type(*g.add_output(), onnx_output_name(options), {graph.classes()});
  check(model, graph.model_name());
  return model;
}

void write_onnx_test_data(const std::string& dir, const std::string& input_name,
                          const Tensor& input, const std::string& output_name,
                          const Tensor& output) {
  const std::filesystem::path set = std::filesystem::path(dir) / "test_data_set_0";
  std::error_code ec;
  std::filesystem::create_directories(set, ec);
  OSPREY_CHECK(!ec, "cannot create '", printable(set.string()), "': ", ec.message());
  write_tensor((set / "input_0.pb").string(), input, input_name);
  write_tensor((set / "output_0.pb").string(), output, output_name);
}

}  // namespace osprey::interop
