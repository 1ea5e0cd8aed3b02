#include "models/registry.h"

#include <functional>
#include <map>

#include "models/mobilenet_v2.h"
#include "models/simple_cnn.h"

namespace osprey::models {
namespace {

using Factory = std::function<std::unique_ptr<Model>(const ModelSpec&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> f = {
      {"simple_cnn",
       [](const ModelSpec& s) {
         return std::make_unique<SimpleCnn>(s.in_channels, s.height, s.width, s.num_classes,
                                            s.seed);
       }},
      {"mobilenet_v2",
       [](const ModelSpec& s) {
         return std::make_unique<MobileNetV2>(s.num_classes, s.width_mult, false, s.in_channels,
                                              s.dropout, s.seed);
       }},
      {"mobilenet_v2_cifar",
       [](const ModelSpec& s) {
         return std::make_unique<MobileNetV2>(s.num_classes, s.width_mult, true, s.in_channels,
                                              s.dropout, s.seed);
       }},
  };
  return f;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& kv : factories()) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Model> create_model(const ModelSpec& spec) {
  auto it = factories().find(spec.name);
  if (it == factories().end()) {
    std::string valid;
    for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
    fail("unknown model '", spec.name, "' (valid: ", valid, ")");
  }
  return it->second(spec);
}

}  // namespace osprey::models
