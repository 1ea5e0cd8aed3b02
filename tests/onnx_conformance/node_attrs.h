// A node's attributes and inputs as the op mappings read them. Attributes a mapping does not
// know make the node not applicable: an ignored attribute could change what ONNX expects.
#pragma once
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tests/onnx_conformance/onnx_ops.h"

namespace osprey::conformance {

class NodeAttrs {
 public:
  explicit NodeAttrs(const onnx::NodeProto& node) : node_(node) {}

  // Refuses any attribute not in `known`.
  void only(std::initializer_list<const char*> known) const;
  bool has(const std::string& name) const { return find(name) != nullptr; }
  int64_t i(const std::string& name, int64_t fallback) const;
  float f(const std::string& name, float fallback) const;
  std::string s(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> ints(const std::string& name, const std::vector<int64_t>& fallback) const;

 private:
  const onnx::AttributeProto* find(const std::string& name) const;
  const onnx::NodeProto& node_;
};

// "[1, 0, 1, 0]" for reasons.
std::string list_str(const std::vector<int64_t>& v);

template <typename... Parts>
[[noreturn]] void not_applicable(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw NotApplicable(out.str());
}

// The input at `index`, or an undefined tensor where the node leaves it out.
inline Tensor optional_input(const NodeRun& run, size_t index) {
  return index < run.inputs.size() ? run.inputs[index] : Tensor();
}
inline Tensor input(const NodeRun& run, size_t index) {
  Tensor t = optional_input(run, index);
  OSPREY_CHECK(t.defined(), run.node.op_type(), ": input ", index, " is missing");
  return t;
}
// Whether the node asks for output `index` (ONNX names an unwanted optional output "").
inline bool wants_output(const NodeRun& run, int index) {
  return index < run.node.output_size() && !run.node.output(index).empty();
}
// A tensor moved to the node's device (undefined stays undefined), and a result brought back.
inline Tensor on(const NodeRun& run, const Tensor& t) {
  return t.defined() ? t.to(run.device) : t;
}
inline Tensor host(const Tensor& t) {
  return t.to(Device::cpu);
}
// The single value of a scalar (or one-element) f32 input.
float scalar_input(const NodeRun& run, size_t index);

// Per-op mappings (onnx_ops.cpp, onnx_conv_pool.cpp).
void run_conv(NodeRun& run);
void run_max_pool(NodeRun& run);
void run_global_average_pool(NodeRun& run);
void run_batch_norm(NodeRun& run);

}  // namespace osprey::conformance
