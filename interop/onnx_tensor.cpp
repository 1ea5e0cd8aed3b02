#include "interop/onnx_tensor.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/parse.h"
#include "engine/safetensors.h"

namespace osprey::interop {

namespace {

DType dtype_of_proto(int32_t data_type, const std::string& what) {
  switch (data_type) {
    case onnx::TensorProto::FLOAT:
      return DType::f32;
    case onnx::TensorProto::INT64:
      return DType::i64;
    case onnx::TensorProto::INT32:
      return DType::i32;
    case onnx::TensorProto::BOOL:
      return DType::u8;
    default:
      fail(what, ": ONNX element type ", data_type,
           " is not supported (only FLOAT, INT64, INT32 and BOOL)");
  }
}

int32_t proto_type_of(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return onnx::TensorProto::FLOAT;
    case DType::i64:
      return onnx::TensorProto::INT64;
    case DType::i32:
      return onnx::TensorProto::INT32;
    default:
      fail("an ONNX tensor of dtype ", dtype_name(dtype),
           " cannot be written (only f32, i64 and i32)");
  }
}

// The typed repeated field that holds a tensor's values when raw_data is empty.
template <typename Field>
void copy_field(const Field& field, int64_t numel, void* out, size_t element,
                const std::string& what) {
  OSPREY_CHECK(int64_t(field.size()) == numel, what, ": holds ", field.size(), " values for ",
               numel, " elements");
  using T = typename Field::value_type;
  if (element == sizeof(T)) {
    std::memcpy(out, field.data(), size_t(numel) * element);
    return;
  }
  // BOOL tensors travel in int32_data, one value per element.
  auto* dst = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < numel; ++i) dst[i] = field.Get(int(i)) != 0;
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OSPREY_CHECK(in, "cannot open '", printable(path), "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  OSPREY_CHECK(!in.bad(), "cannot read '", printable(path), "'");
  return bytes.str();
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& what) {
  const DType dtype = dtype_of_proto(proto.data_type(), what);
  OSPREY_CHECK(proto.data_location() == onnx::TensorProto::DEFAULT, what,
               ": tensors stored outside the file are not supported");
  Shape shape;
  for (int64_t d : proto.dims()) {
    OSPREY_CHECK(d >= 0 && d <= (int64_t(1) << 32), what, ": dimension ", d, " out of range");
    shape.push_back(d);
  }
  const int64_t numel = shape_numel(shape);
  OSPREY_CHECK(numel <= (int64_t(1) << 32), what, ": ", numel, " elements is too many");
  Tensor t = Tensor::empty(shape, dtype);
  const size_t element = dtype_size(dtype);
  if (!proto.raw_data().empty() || numel == 0) {
    OSPREY_CHECK(proto.raw_data().size() == size_t(numel) * element, what, ": raw_data has ",
                 proto.raw_data().size(), " bytes for ", numel, " elements of ", element);
    std::memcpy(t.raw(), proto.raw_data().data(), proto.raw_data().size());
  } else if (dtype == DType::f32) {
    copy_field(proto.float_data(), numel, t.raw(), element, what);
  } else if (dtype == DType::i64) {
    copy_field(proto.int64_data(), numel, t.raw(), element, what);
  } else {
    copy_field(proto.int32_data(), numel, t.raw(), element, what);
  }
  return t;
}

onnx::TensorProto tensor_to_proto(const Tensor& t, const std::string& name) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(proto_type_of(t.dtype()));
  for (int64_t d : t.shape()) proto.add_dims(d);
  const Tensor host = t.to(Device::cpu);
  proto.set_raw_data(static_cast<const char*>(host.raw()), host.nbytes());
  return proto;
}

onnx::ModelProto read_onnx_model(const std::string& path) {
  onnx::ModelProto model;
  const std::string bytes = read_file_bytes(path);
  OSPREY_CHECK(model.ParseFromString(bytes), "'", printable(path), "' is not an ONNX model");
  return model;
}

onnx::TensorProto read_onnx_tensor(const std::string& path) {
  onnx::TensorProto tensor;
  const std::string bytes = read_file_bytes(path);
  OSPREY_CHECK(tensor.ParseFromString(bytes), "'", printable(path), "' is not an ONNX tensor");
  return tensor;
}

void write_onnx_model(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  OSPREY_CHECK(model.SerializeToString(&bytes), "the ONNX model for '", printable(path),
               "' could not be serialized (over protobuf's 2 GiB limit?)");
  write_file_atomic(path, bytes);
}

}  // namespace osprey::interop
