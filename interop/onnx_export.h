// A model's inference graph (engine/inference_graph.h) as an ONNX model: opset 13 of the
// default domain, one float input "input" [N,C,H,W] whose batch dimension N is free, one output
// "logits" [N,classes] (or "probabilities" after a Softmax), the weights as initializers. ReLU6
// is Clip(0, 6) with its bounds as inputs (Clip has no attributes since opset 11); a linear
// layer is Gemm with transB. ONNX's checker passes every model before it is returned or written.
#pragma once
#include <onnx/onnx_pb.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/inference_graph.h"
#include "engine/tensor.h"

namespace osprey::interop {

constexpr int kOnnxOpset = 13;

struct OnnxExportOptions {
  bool softmax = false;  // append Softmax over the classes: probabilities instead of logits
  std::string producer_version;
  // The model's metadata_props, in order (class names, input size, normalisation, ...).
  std::vector<std::pair<std::string, std::string>> metadata;
};

// The output's name for these options: "logits" or "probabilities".
const char* onnx_output_name(const OnnxExportOptions& options);

// Fails, naming the graph, when ONNX's checker rejects what was built.
onnx::ModelProto onnx_model(const InferenceGraph& graph, const OnnxExportOptions& options);

// ONNX's test-case layout beside a model: dir/test_data_set_0/input_0.pb and output_0.pb,
// each a TensorProto named as the model's input and output (the same layout as ONNX's own node
// tests, which onnxruntime's test runner reads). Each file is written atomically.
void write_onnx_test_data(const std::string& dir, const std::string& input_name,
                          const Tensor& input, const std::string& output_name,
                          const Tensor& output);

}  // namespace osprey::interop
