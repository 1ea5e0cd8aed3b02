// Helpers shared by the test binaries: a self-removing temporary directory and a small
// synthetic dataset.
#pragma once
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "engine/safetensors.h"

namespace osprey::tests {

// A fresh directory under the system temp dir, removed (with its contents) on destruction.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "osprey_test") {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() /
           (tag + "_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// n images of h x w x c with distinct, deterministic pixels; sample i has label i.
inline data::Dataset make_synthetic_dataset(int n, int h = 2, int w = 3, int c = 1) {
  data::Dataset ds;
  ds.name = "synthetic";
  ds.n = n, ds.h = h, ds.w = w, ds.c = c;
  ds.num_classes = n;
  ds.pixels.resize(size_t(n) * h * w * c);
  for (size_t i = 0; i < ds.pixels.size(); ++i) ds.pixels[i] = uint8_t((i * 37 + 11) % 256);
  for (int i = 0; i < n; ++i) ds.labels.push_back(i);
  for (int i = 0; i < n; ++i) ds.class_names.push_back(std::to_string(i));
  return ds;
}

// Two safetensors files hold the same tensor names with byte-identical contents (metadata aside).
inline void require_identical_tensors(const std::string& a, const std::string& b) {
  SafeTensorsFile fa = SafeTensorsFile::read(a), fb = SafeTensorsFile::read(b);
  REQUIRE(fa.names() == fb.names());
  for (const std::string& name : fa.names()) {
    INFO(name);
    REQUIRE(fa.entry(name).bytes == fb.entry(name).bytes);
  }
}

// A copy of safetensors file `from` at `to` with metadata `key` set to `value`, or removed when
// `value` is empty: damaged metadata for the tests of its checks.
inline void copy_with_metadata(const std::string& from, const std::string& to,
                               const std::string& key, const std::string& value) {
  SafeTensorsFile f = SafeTensorsFile::read(from);
  SafeTensorsWriter w;
  for (const std::string& name : f.names()) {
    if (f.entry(name).dtype == "I64")
      w.add_i64(name, f.shape(name), f.ints(name).data());
    else
      w.add_f32(name, f.shape(name), f.floats(name).data());
  }
  for (const auto& [k, v] : f.metadata())
    if (k != key) w.set_metadata(k, v);
  if (!value.empty()) w.set_metadata(key, value);
  w.write(to);
}

}  // namespace osprey::tests
