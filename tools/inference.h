// `osprey eval` and `osprey predict`: a trained checkpoint applied to a test set or to images.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/model.h"
#include "tools/config.h"
#include "tools/datasets.h"
#include "tools/evaluate.h"

namespace osprey::tools {

struct TrainedModel {
  std::string checkpoint;
  TrainConfig cfg;
  ModelInput input;
  std::unique_ptr<Model> model;       // weights loaded, eval mode
  std::unique_ptr<InferenceNet> net;  // model's inference form (predict, serve)
};

// run_or_file as for `--resume`; overrides ("key=value") adjust the stored config (e.g. data_dir).
// The stored model input is checked (sizes in range, one class name per class) and its class
// names are escaped for display (engine/parse.h printable): they come from data files.
// A bare state_dict (a PyTorch .pth, or safetensors without Osprey's metadata) needs
// config_file, the training config it belongs to: its model, and its data, read for the classes
// and the image shape. An Osprey checkpoint refuses one (its config is stored).
TrainedModel load_trained(const std::string& run_or_file, const std::vector<std::string>& overrides,
                          const std::string& config_file = "");

// The whole configured test set: accuracy, loss, per-class accuracy and the confusion matrix.
Evaluation run_eval(TrainedModel& tm);
void print_evaluation(const Evaluation& ev, const ModelInput& input);

struct Prediction {
  std::string path;
  std::vector<std::pair<int, float>> top;  // (class, probability), best first
  bool uncertain = false;                  // top-1 probability below the threshold
};

// Loads each image (PNG/JPEG/...), converts it to the model's input (channels, size, the
// config's normalisation) and returns the top-k classes by softmax probability. A non-finite
// score (weights that overflow on the image) is an error naming the image, never "nan%".
std::vector<Prediction> run_predict(TrainedModel& tm, const std::vector<std::string>& images,
                                    int top_k, float threshold);
// The same for decoded images of any size, with the training images' channel count
// (input.source.c; the web server's uploads).
std::vector<Prediction> predict_images(TrainedModel& tm, const std::vector<data::Image>& images,
                                       int top_k, float threshold);

}  // namespace osprey::tools
