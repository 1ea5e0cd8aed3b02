#include "engine/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace osprey {
namespace {

size_t element_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
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

}  // namespace

SafeTensorsFile SafeTensorsFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OSPREY_CHECK(in.good(), "cannot open safetensors file '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  uint64_t file_size = uint64_t(in.tellg());
  in.seekg(0);
  OSPREY_CHECK(file_size >= 8, "safetensors file '", path, "' is truncated: ", file_size,
               " bytes, not even the 8-byte header length");
  uint8_t len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = load<uint64_t>(len_bytes);
  OSPREY_CHECK(header_len <= file_size - 8, "safetensors file '", path, "' is corrupt: header of ",
               header_len, " bytes but the file has ", file_size, " bytes");
  std::string header(header_len, '\0');
  in.read(header.data(), std::streamsize(header_len));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    fail("safetensors file '", path, "' has an unreadable header: ", e.what());
  }
  OSPREY_CHECK(j.is_object(), "safetensors file '", path, "': header is not a JSON object");

  SafeTensorsFile f;
  f.path_ = path;
  uint64_t data_size = file_size - 8 - header_len;
  std::vector<uint8_t> data(data_size);
  in.read(reinterpret_cast<char*>(data.data()), std::streamsize(data_size));
  OSPREY_CHECK(in.good() || data_size == 0, "safetensors file '", path, "': read error");
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it.value().begin(); m != it.value().end(); ++m)
          f.metadata_[m.key()] =
              m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
        continue;
      }
      const auto& v = it.value();
      SafeTensorEntry e;
      e.dtype = v.at("dtype").get<std::string>();
      e.shape = v.at("shape").get<Shape>();
      auto offs = v.at("data_offsets").get<std::vector<uint64_t>>();
      size_t es = element_size(e.dtype);
      OSPREY_CHECK(es != 0, "safetensors file '", path, "': tensor '", it.key(),
                   "' has unsupported dtype ", e.dtype);
      OSPREY_CHECK(offs.size() == 2 && offs[0] <= offs[1] && offs[1] <= data_size,
                   "safetensors file '", path, "': tensor '", it.key(),
                   "' has data offsets outside the file (truncated or corrupt)");
      for (int64_t d : e.shape)
        OSPREY_CHECK(d >= 0, "safetensors file '", path, "': tensor '", it.key(),
                     "' has a negative dimension");
      OSPREY_CHECK(uint64_t(shape_numel(e.shape)) * es == offs[1] - offs[0], "safetensors file '",
                   path, "': tensor '", it.key(), "' of shape ", shape_str(e.shape), " ", e.dtype,
                   " does not match its ", offs[1] - offs[0], " data bytes");
      e.bytes.assign(data.begin() + int64_t(offs[0]), data.begin() + int64_t(offs[1]));
      f.entries_[it.key()] = std::move(e);
    }
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors file '", path, "' has a malformed header: ", e.what());
  }
  return f;
}

const SafeTensorEntry& SafeTensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  OSPREY_CHECK(it != entries_.end(), "safetensors file '", path_, "' has no tensor '", name, "'");
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
      fail("safetensors file '", path_, "': tensor '", name, "' of dtype ", e.dtype,
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
      fail("safetensors file '", path_, "': tensor '", name, "' of dtype ", e.dtype,
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
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
