// An in-memory labelled image dataset: uint8 pixels in NHWC order, int64 labels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace osprey::data {

struct Dataset {
  std::string name;
  int n = 0, h = 0, w = 0, c = 0;
  int num_classes = 0;
  std::vector<uint8_t> pixels;           // n * h * w * c
  std::vector<int64_t> labels;           // n
  std::vector<std::string> class_names;  // num_classes entries

  int64_t image_size() const { return int64_t(h) * w * c; }
};

}  // namespace osprey::data
