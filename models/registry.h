// Models by name, so configs, checkpoints and `osprey verify` can build them.
#pragma once
#include <functional>
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

using ModelFactory = std::function<std::unique_ptr<Model>(const ModelSpec&)>;

// The built-in models and those registered, sorted.
std::vector<std::string> model_names();
// Fails with the list of valid names when spec.name is unknown.
std::unique_ptr<Model> create_model(const ModelSpec& spec);

// Makes a model of the user's known by name, like the built-in ones: configs (model = name),
// run_train, checkpoints, eval and predict then build it through factory. Fails when the name
// is empty or already taken. Thread-safe.
void register_model(const std::string& name, ModelFactory factory);

}  // namespace osprey::models
