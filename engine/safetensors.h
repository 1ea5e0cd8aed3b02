// Reading and writing the safetensors format (8-byte little-endian header length, a JSON header
// of {name: {dtype, shape, data_offsets}} plus "__metadata__", then the raw data), as written by
// safetensors.torch.save_file. Every field is validated; writes are atomic.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace osprey {

struct SafeTensorEntry {
  std::string dtype;  // "F32", "F64", "F16", "BF16", "I64", "I32", "U8", ...
  Shape shape;
  std::vector<uint8_t> bytes;
};

class SafeTensorsFile {
 public:
  static SafeTensorsFile read(const std::string& path);
  // The tensors of another format (engine/pth.h), checked as read() checks a file's: a known
  // dtype and bytes that match the shape. `kind` and `path` name the source in errors
  // ("PyTorch file 'x.pth'").
  static SafeTensorsFile from_entries(const std::string& kind, const std::string& path,
                                      std::map<std::string, SafeTensorEntry> entries);

  const std::string& path() const { return path_; }
  // "safetensors file 'PATH'", or the kind from_entries was given: for messages.
  std::string describe() const;
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const SafeTensorEntry& entry(const std::string& name) const;
  std::vector<std::string> names() const;
  // Converted to float / int64 (F32, F64, F16, BF16, I64, I32, U8 sources).
  std::vector<float> floats(const std::string& name) const;
  std::vector<int64_t> ints(const std::string& name) const;
  Shape shape(const std::string& name) const { return entry(name).shape; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // One "__metadata__" value; fails naming the file and key when it is missing. The numeric
  // forms need the whole value to be the number, in [lo, hi] (engine/parse.h), and fail naming
  // the file and key otherwise.
  const std::string& metadata_string(const std::string& key) const;
  int64_t metadata_int(const std::string& key, int64_t lo, int64_t hi) const;
  uint64_t metadata_uint64(const std::string& key) const;
  double metadata_double(const std::string& key, double lo, double hi) const;

 private:
  std::string metadata_what(const std::string& key) const;

  std::string kind_ = "safetensors file";
  std::string path_;
  std::map<std::string, SafeTensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

class SafeTensorsWriter {
 public:
  void add_f32(const std::string& name, const Shape& shape, const float* data);
  void add_i64(const std::string& name, const Shape& shape, const int64_t* data);
  // Any dtype read() knows, bytes as they are (osprey convert); fails unless they fit the shape.
  void add(const std::string& name, const SafeTensorEntry& entry);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // Writes to a temporary file beside path, fsyncs it, renames it over path and fsyncs the
  // directory: a crash leaves either the old file or the new one, never a partial one.
  void write(const std::string& path) const;

 private:
  std::map<std::string, SafeTensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// The size of one element of a safetensors dtype ("F32": 4), 0 for a dtype Osprey does not know.
size_t safetensors_element_size(const std::string& dtype);

// Writes bytes to path atomically (temp file, fsync, rename, fsync of the directory).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace osprey
