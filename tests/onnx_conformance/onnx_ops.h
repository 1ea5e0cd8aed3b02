// ONNX nodes run through Osprey's ops. Each ONNX op maps onto the Osprey op that computes it;
// the runner only changes layouts (NCHW <-> NHWC, OIHW -> OHWI, transposes) and applies Gemm's
// alpha and beta around Osprey's linear. A node Osprey has no op or setting for is refused with
// NotApplicable and its reason, before anything runs.
#pragma once
#include <onnx/onnx_pb.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace osprey::conformance {

struct NotApplicable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NodeRun {
  const onnx::NodeProto& node;
  int64_t opset = 0;  // of the default ONNX domain
  Device device = Device::cpu;
  std::vector<Tensor> inputs;  // cpu, ONNX layout; undefined where an optional input is absent
  // Filled by run_node: one per node output, cpu, ONNX layout; and for each, why it cannot be
  // compared with ONNX's expected value ("" when it can).
  std::vector<Tensor> outputs;
  std::vector<std::string> unchecked;
};

// The ONNX ops this runner maps (the others' tests are not selected at all).
const std::vector<std::string>& mapped_ops();
bool is_mapped_op(const std::string& op_type);
// Runs one node; throws NotApplicable when Osprey cannot run it as asked.
void run_node(NodeRun& run);

}  // namespace osprey::conformance
