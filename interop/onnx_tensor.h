// Osprey tensors to and from ONNX's TensorProto, and ONNX files read and written whole. ONNX
// holds tensors as row-major arrays in their own shape: a layout change (NCHW <-> NHWC, OIHW <->
// OHWI) is the caller's. Files come from users: sizes are checked against what a message holds,
// and a bad file is an error naming it, never a partial result.
#pragma once
#include <onnx/onnx_pb.h>

#include <string>

#include "engine/tensor.h"

namespace osprey::interop {

// A FLOAT, INT64, INT32 or BOOL TensorProto (raw_data or the typed field) as a cpu tensor of
// dtype f32, i64, i32 or u8 (0 or 1). `what` names it in errors.
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& what);
// A cpu f32, i64 or i32 tensor as a TensorProto named `name`, in raw_data.
onnx::TensorProto tensor_to_proto(const Tensor& t, const std::string& name);

// One serialized message read from a file (a model, or a test's input_N.pb / output_N.pb).
onnx::ModelProto read_onnx_model(const std::string& path);
onnx::TensorProto read_onnx_tensor(const std::string& path);
// The model serialized and written atomically (temp file + rename).
void write_onnx_model(const onnx::ModelProto& model, const std::string& path);

}  // namespace osprey::interop
