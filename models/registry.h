// Models by name, so configs, checkpoints and `osprey verify` can build them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"

namespace osprey::models {

struct ModelSpec {
  std::string name = "simple_cnn";
  int in_channels = 1;
  int height = 28, width = 28;
  int num_classes = 10;
  float width_mult = 1.0f;  // models with a width multiplier
  float dropout = 0.2f;     // models with a classifier dropout (simple_cnn has none)
  uint64_t seed = 0;        // initialisation
};

std::vector<std::string> model_names();
// Fails with the list of valid names when spec.name is unknown.
std::unique_ptr<Model> create_model(const ModelSpec& spec);

}  // namespace osprey::models
