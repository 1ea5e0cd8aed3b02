#include "engine/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/parse.h"

namespace osprey {
namespace {

// The bytes an entry of this dtype and shape needs; fails naming `what` for an unknown dtype.
int64_t entry_bytes(const std::string& dtype, const Shape& shape, const std::string& what) {
  const size_t es = safetensors_element_size(dtype);
  OSPREY_CHECK(es != 0, what, " has unsupported dtype ", printable(dtype));
  int64_t numel = 1;
  for (int64_t d : shape) numel = checked_mul(numel, d, what + " of shape " + shape_str(shape));
  return checked_mul(numel, int64_t(es), what + " of shape " + shape_str(shape));
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Shape entries must be JSON integers in [0, 2^63): get<Shape>() would truncate 1.5 and wrap
// 2^64 - 1 to -1.
Shape parse_shape(const nlohmann::json& v, const std::string& what) {
  OSPREY_CHECK(v.is_array(), what, ": shape is not a list");
  Shape shape;
  for (const auto& d : v) {
    OSPREY_CHECK(d.is_number_integer() && (d.is_number_unsigned() || d.get<int64_t>() >= 0) &&
                     d.get<uint64_t>() <= uint64_t(INT64_MAX),
                 what, ": shape ", d.dump(), " entry is not a non-negative integer");
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

SafeTensorEntry parse_entry(const nlohmann::json& v, const std::string& what,
                            const std::vector<uint8_t>& data) {
  OSPREY_CHECK(v.is_object(), what, ": entry is not a JSON object");
  SafeTensorEntry e;
  e.dtype = v.at("dtype").get<std::string>();
  OSPREY_CHECK(safetensors_element_size(e.dtype) != 0, what, " has unsupported dtype ",
               printable(e.dtype));
  e.shape = parse_shape(v.at("shape"), what);
  const auto& offs = v.at("data_offsets");
  OSPREY_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() &&
                   offs[1].is_number_unsigned(),
               what, ": data_offsets is not a pair of non-negative integers");
  uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
  OSPREY_CHECK(begin <= end && end <= data.size(), what, " has data offsets [", begin, ", ", end,
               "] outside the ", data.size(), " data bytes of the file (truncated or corrupt)");
  const int64_t nbytes = entry_bytes(e.dtype, e.shape, what);
  OSPREY_CHECK(uint64_t(nbytes) == end - begin, what, " of shape ", shape_str(e.shape), " ",
               e.dtype, " needs ", nbytes, " bytes but its data_offsets hold ", end - begin);
  e.bytes.assign(data.begin() + int64_t(begin), data.begin() + int64_t(end));
  return e;
}

}  // namespace

size_t safetensors_element_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafeTensorsFile SafeTensorsFile::from_entries(const std::string& kind, const std::string& path,
                                              std::map<std::string, SafeTensorEntry> entries) {
  for (const auto& [name, e] : entries) {
    const std::string what = kind + " '" + printable(path) + "': tensor '" + printable(name) + "'";
    const int64_t nbytes = entry_bytes(e.dtype, e.shape, what);
    OSPREY_CHECK(uint64_t(nbytes) == e.bytes.size(), what, " of shape ", shape_str(e.shape), " ",
                 e.dtype, " needs ", nbytes, " bytes but holds ", e.bytes.size());
  }
  SafeTensorsFile f;
  f.kind_ = kind;
  f.path_ = path;
  f.entries_ = std::move(entries);
  return f;
}

std::string SafeTensorsFile::describe() const {
  return kind_ + " '" + printable(path_) + "'";
}

SafeTensorsFile SafeTensorsFile::read(const std::string& path) {
  const std::string file = "safetensors file '" + printable(path) + "'";
  std::ifstream in(path, std::ios::binary);
  OSPREY_CHECK(in.good(), "cannot open ", file, ": ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  uint64_t file_size = uint64_t(in.tellg());
  in.seekg(0);
  OSPREY_CHECK(file_size >= 8, file, " is truncated: ", file_size,
               " bytes, not even the 8-byte header length");
  uint8_t len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = load<uint64_t>(len_bytes);
  OSPREY_CHECK(header_len <= file_size - 8, file, " is corrupt: header of ", header_len,
               " bytes but the file has ", file_size, " bytes");
  std::string header(header_len, '\0');
  in.read(header.data(), std::streamsize(header_len));
  check_json_depth(header, file + ": header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    fail(file, " has an unreadable header: ", e.what());
  }
  OSPREY_CHECK(j.is_object(), file, ": header is not a JSON object");

  SafeTensorsFile f;
  f.path_ = path;
  uint64_t data_size = file_size - 8 - header_len;
  std::vector<uint8_t> data(data_size);
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(data_size));
  OSPREY_CHECK(in.good() || data_size == 0, file, ": read error");
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        OSPREY_CHECK(it.value().is_object(), file, ": __metadata__ is not a JSON object");
        for (auto m = it.value().begin(); m != it.value().end(); ++m)
          f.metadata_[m.key()] =
              m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
        continue;
      }
      f.entries_[it.key()] =
          parse_entry(it.value(), file + ": tensor '" + printable(it.key()) + "'", data);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(file, " has a malformed header: ", e.what());
  }
  return f;
}

const std::string& SafeTensorsFile::metadata_string(const std::string& key) const {
  auto it = metadata_.find(key);
  OSPREY_CHECK(it != metadata_.end(), describe(), " has no metadata key '", printable(key), "'");
  return it->second;
}

int64_t SafeTensorsFile::metadata_int(const std::string& key, int64_t lo, int64_t hi) const {
  return parse_int(metadata_string(key), lo, hi, metadata_what(key));
}

uint64_t SafeTensorsFile::metadata_uint64(const std::string& key) const {
  return parse_uint64(metadata_string(key), metadata_what(key));
}

double SafeTensorsFile::metadata_double(const std::string& key, double lo, double hi) const {
  return parse_double(metadata_string(key), lo, hi, metadata_what(key));
}

std::string SafeTensorsFile::metadata_what(const std::string& key) const {
  return describe() + ": metadata '" + printable(key) + "'";
}

const SafeTensorEntry& SafeTensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  OSPREY_CHECK(it != entries_.end(), describe(), " has no tensor '", printable(name), "'");
  return it->second;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

std::vector<float> SafeTensorsFile::floats(const std::string& name) const {
  const SafeTensorEntry& e = entry(name);
  size_t n = size_t(shape_numel(e.shape));
  std::vector<float> out(n);
  const uint8_t* p = e.bytes.data();
  for (size_t i = 0; i < n; ++i) {
    if (e.dtype == "F32")
      out[i] = load<float>(p + 4 * i);
    else if (e.dtype == "F64")
      out[i] = float(load<double>(p + 8 * i));
    else if (e.dtype == "F16")
      out[i] = half_to_float(load<uint16_t>(p + 2 * i));
    else if (e.dtype == "BF16") {
      uint32_t bits = uint32_t(load<uint16_t>(p + 2 * i)) << 16;
      std::memcpy(&out[i], &bits, 4);
    } else if (e.dtype == "I64")
      out[i] = float(load<int64_t>(p + 8 * i));
    else if (e.dtype == "I32")
      out[i] = float(load<int32_t>(p + 4 * i));
    else if (e.dtype == "U8")
      out[i] = float(p[i]);
    else
      fail(describe(), ": tensor '", printable(name), "' of dtype ", e.dtype,
           " cannot be read as floats");
  }
  return out;
}

std::vector<int64_t> SafeTensorsFile::ints(const std::string& name) const {
  const SafeTensorEntry& e = entry(name);
  size_t n = size_t(shape_numel(e.shape));
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (e.dtype == "I64")
      out[i] = load<int64_t>(e.bytes.data() + 8 * i);
    else if (e.dtype == "I32")
      out[i] = load<int32_t>(e.bytes.data() + 4 * i);
    else if (e.dtype == "U8")
      out[i] = e.bytes[i];
    else
      fail(describe(), ": tensor '", printable(name), "' of dtype ", e.dtype,
           " is not an integer tensor");
  }
  return out;
}

void SafeTensorsWriter::add_f32(const std::string& name, const Shape& shape, const float* data) {
  SafeTensorEntry e{"F32", shape, {}};
  auto p = reinterpret_cast<const uint8_t*>(data);
  e.bytes.assign(p, p + shape_numel(shape) * 4);
  entries_[name] = std::move(e);
}

void SafeTensorsWriter::add_i64(const std::string& name, const Shape& shape, const int64_t* data) {
  SafeTensorEntry e{"I64", shape, {}};
  auto p = reinterpret_cast<const uint8_t*>(data);
  e.bytes.assign(p, p + shape_numel(shape) * 8);
  entries_[name] = std::move(e);
}

void SafeTensorsWriter::add(const std::string& name, const SafeTensorEntry& entry) {
  const std::string what = "tensor '" + printable(name) + "'";
  const int64_t nbytes = entry_bytes(entry.dtype, entry.shape, what);
  OSPREY_CHECK(uint64_t(nbytes) == entry.bytes.size(), what, " of shape ", shape_str(entry.shape),
               " ", entry.dtype, " needs ", nbytes, " bytes, not ", entry.bytes.size());
  entries_[name] = entry;
}

void SafeTensorsWriter::write(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& kv : entries_) {
    uint64_t n = kv.second.bytes.size();
    header[kv.first] = {{"dtype", kv.second.dtype},
                        {"shape", kv.second.shape},
                        {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes with spaces
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t len = h.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += h;
  for (const auto& kv : entries_)
    out.append(reinterpret_cast<const char*>(kv.second.bytes.data()), kv.second.bytes.size());
  write_file_atomic(path, out);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  // A file or link already at that name is a leftover of a dead process that had our PID, or a
  // planted link: never write through it.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  OSPREY_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write '", tmp, "': ", std::strerror(err));
    }
    done += size_t(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot flush '", tmp, "': ", std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace osprey
