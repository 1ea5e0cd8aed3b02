#include "models/registry.h"

#include <map>
#include <mutex>

#include "models/mobilenet_v2.h"
#include "models/simple_cnn.h"

namespace osprey::models {
namespace {

std::map<std::string, ModelFactory> built_in() {
  return {
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
}

// The built-in factories and the registered ones, behind one mutex.
struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelFactory> factories = built_in();
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::vector<std::string> model_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& kv : r.factories) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Model> create_model(const ModelSpec& spec) {
  ModelFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(spec.name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string valid;
    for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
    fail("unknown model '", spec.name, "' (valid: ", valid, ")");
  }
  std::unique_ptr<Model> model = factory(spec);
  OSPREY_CHECK(model != nullptr, "the factory of model '", spec.name, "' returned no model");
  return model;
}

void register_model(const std::string& name, ModelFactory factory) {
  OSPREY_CHECK(!name.empty(), "register_model: a model needs a name");
  OSPREY_CHECK(factory != nullptr, "register_model: model '", name, "' has no factory");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  OSPREY_CHECK(r.factories.emplace(name, std::move(factory)).second, "register_model: '", name,
               "' is already a model name");
}

}  // namespace osprey::models
