// From a run config to data and model: which reader, which split, which channels, which
// augmentation and normalisation, and the model sized for what the pipeline produces.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/model.h"
#include "tools/config.h"

namespace osprey::tools {

struct DataSplits {
  data::Dataset train, test;
  int num_classes = 0;
};

// Reads the configured dataset and split; applies limit_train / limit_test.
DataSplits load_data(const TrainConfig& cfg);
// Fails, saying what is wrong, unless both splits hold images of one shape with their labels
// in [0, num_classes): what training needs of any data, read or a program's own.
void check_splits(const DataSplits& s);

// The training pipeline (augmentation + normalisation) and its deterministic evaluation
// counterpart, for images of the given stored shape.
struct Pipelines {
  std::shared_ptr<const data::AugmentPipeline> train;
  data::AugmentPipeline eval;
  data::ImageShape source;  // stored images
  int channels = 0;         // channels the model sees
  data::ImageShape output;  // what the model sees
};
Pipelines make_pipelines(const TrainConfig& cfg, data::ImageShape source);

// What the model sees and the classes, stored in checkpoints so `osprey predict` can rebuild
// the model and its input pipeline without the dataset.
struct ModelInput {
  int h = 0, w = 0, c = 0;
  int num_classes = 0;
  std::vector<std::string> class_names;
  data::ImageShape source;  // stored image shape the eval pipeline expects
  nlohmann::json eval_pipeline;
  nlohmann::json to_json() const;
  static ModelInput from_json(const nlohmann::json& j);
};
ModelInput model_input(const DataSplits& data, const Pipelines& pipes);

std::unique_ptr<Model> create_model_for(const TrainConfig& cfg, const ModelInput& input);
data::LoaderOptions loader_options(const TrainConfig& cfg, const Pipelines& pipes);

}  // namespace osprey::tools
