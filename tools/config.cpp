#include "tools/config.h"

#include <fstream>
#include <functional>
#include <map>

#include "engine/error.h"

namespace osprey::tools {
namespace {

using json = nlohmann::json;

struct Field {
  std::function<void(TrainConfig&, const json&, const std::string&)> set;
  std::function<json(const TrainConfig&)> get;
};

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "a boolean";
  else if constexpr (std::is_integral_v<T>)
    return "an integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else if constexpr (std::is_same_v<T, json>)
    return "null, a preset name or a list of transforms";
  else
    return "a list of numbers";
}

template <typename T>
bool type_ok(const json& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v.is_boolean();
  else if constexpr (std::is_unsigned_v<T>)
    return v.is_number_unsigned();
  else if constexpr (std::is_integral_v<T>)
    return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>)
    return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>)
    return v.is_string();
  else if constexpr (std::is_same_v<T, json>)
    return v.is_null() || v.is_string() || v.is_array();
  else {
    if (!v.is_array()) return false;
    for (const auto& e : v)
      if (!e.is_number()) return false;
    return true;
  }
}

template <typename T>
Field field(T TrainConfig::*member) {
  return Field{[member](TrainConfig& c, const json& v, const std::string& where) {
                 if (!type_ok<T>(v)) fail(where, ": '", v.dump(), "' is not ", type_name<T>());
                 c.*member = v.get<T>();
               },
               [member](const TrainConfig& c) { return json(c.*member); }};
}

const std::map<std::string, Field>& fields() {
  static const std::map<std::string, Field> f = {
      {"name", field(&TrainConfig::name)},
      {"model", field(&TrainConfig::model)},
      {"dataset", field(&TrainConfig::dataset)},
      {"data_dir", field(&TrainConfig::data_dir)},
      {"test_fraction", field(&TrainConfig::test_fraction)},
      {"image_size", field(&TrainConfig::image_size)},
      {"channels", field(&TrainConfig::channels)},
      {"augment", field(&TrainConfig::augment)},
      {"augment_threads", field(&TrainConfig::augment_threads)},
      {"limit_train", field(&TrainConfig::limit_train)},
      {"limit_test", field(&TrainConfig::limit_test)},
      {"mean", field(&TrainConfig::mean)},
      {"std", field(&TrainConfig::std)},
      {"epochs", field(&TrainConfig::epochs)},
      {"batch_size", field(&TrainConfig::batch_size)},
      {"eval_batch_size", field(&TrainConfig::eval_batch_size)},
      {"optimizer", field(&TrainConfig::optimizer)},
      {"lr", field(&TrainConfig::lr)},
      {"weight_decay", field(&TrainConfig::weight_decay)},
      {"beta1", field(&TrainConfig::beta1)},
      {"beta2", field(&TrainConfig::beta2)},
      {"eps", field(&TrainConfig::eps)},
      {"momentum", field(&TrainConfig::momentum)},
      {"nesterov", field(&TrainConfig::nesterov)},
      {"schedule", field(&TrainConfig::schedule)},
      {"step_size", field(&TrainConfig::step_size)},
      {"gamma", field(&TrainConfig::gamma)},
      {"min_lr", field(&TrainConfig::min_lr)},
      {"pct_start", field(&TrainConfig::pct_start)},
      {"cycle_momentum", field(&TrainConfig::cycle_momentum)},
      {"base_momentum", field(&TrainConfig::base_momentum)},
      {"max_momentum", field(&TrainConfig::max_momentum)},
      {"clip_grad_norm", field(&TrainConfig::clip_grad_norm)},
      {"label_smoothing", field(&TrainConfig::label_smoothing)},
      {"width_mult", field(&TrainConfig::width_mult)},
      {"dropout", field(&TrainConfig::dropout)},
      {"seed", field(&TrainConfig::seed)},
      {"threads", field(&TrainConfig::threads)},
      {"device", field(&TrainConfig::device)},
      {"tf32", field(&TrainConfig::tf32)},
      {"recompute_activations", field(&TrainConfig::recompute_activations)},
      {"precision", field(&TrainConfig::precision)},
      {"augment_device", field(&TrainConfig::augment_device)},
      {"communicator", field(&TrainConfig::communicator)},
      {"runs_dir", field(&TrainConfig::runs_dir)},
      {"init_from", field(&TrainConfig::init_from)},
      {"stop_after_steps", field(&TrainConfig::stop_after_steps)},
      {"first_bucket_bytes", field(&TrainConfig::first_bucket_bytes)},
      {"sync_batchnorm", field(&TrainConfig::sync_batchnorm)},
      {"pipeline_stages", field(&TrainConfig::pipeline_stages)},
      {"micro_batches", field(&TrainConfig::micro_batches)},
      {"bucket_bytes", field(&TrainConfig::bucket_bytes)},
      {"progress", field(&TrainConfig::progress)},
  };
  return f;
}

std::string valid_keys() {
  std::string s;
  for (const auto& kv : fields()) s += (s.empty() ? "" : ", ") + kv.first;
  return s;
}

void apply_key(TrainConfig& cfg, const std::string& key, const json& value,
               const std::string& origin) {
  auto it = fields().find(key);
  OSPREY_CHECK(it != fields().end(), origin, ": unknown config key '", key,
               "' (valid keys: ", valid_keys(), ")");
  it->second.set(cfg, value, origin + ": key '" + key + "'");
}

}  // namespace

void apply_json(TrainConfig& cfg, const json& j, const std::string& origin) {
  OSPREY_CHECK(j.is_object(), origin, ": a config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) apply_key(cfg, it.key(), it.value(), origin);
}

TrainConfig load_config_file(const std::string& path) {
  std::ifstream in(path);
  OSPREY_CHECK(in.good(), "cannot open config file '", path, "'");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("config file '", path, "' is not valid JSON: ", e.what());
  }
  TrainConfig cfg;
  apply_json(cfg, j, "config file '" + path + "'");
  return cfg;
}

void apply_override(TrainConfig& cfg, const std::string& assignment) {
  auto eq = assignment.find('=');
  OSPREY_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment, "': expected key=value");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  apply_key(cfg, key, value, "--set " + assignment);
}

json to_json(const TrainConfig& cfg) {
  json j = json::object();
  for (const auto& kv : fields()) j[kv.first] = kv.second.get(cfg);
  return j;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& kv : fields()) keys.push_back(kv.first);
  return keys;
}

void validate(const TrainConfig& c) {
  OSPREY_CHECK(!c.name.empty() && c.name.find('/') == std::string::npos, "config: name '", c.name,
               "' must be non-empty and contain no '/'");
  OSPREY_CHECK(c.epochs >= 1, "config: epochs must be >= 1, got ", c.epochs);
  OSPREY_CHECK(c.batch_size >= 1 && c.eval_batch_size >= 1, "config: batch sizes must be >= 1");
  OSPREY_CHECK(c.lr > 0, "config: lr must be > 0, got ", c.lr);
  OSPREY_CHECK(c.limit_train >= 0 && c.limit_test >= 0, "config: limits must be >= 0");
  OSPREY_CHECK(c.threads >= 0, "config: threads must be >= 0 (0 = all cores)");
  OSPREY_CHECK(c.device == "cpu" || c.device == "cuda" || c.device == "auto", "config: device '",
               c.device, "' is not one of cpu, cuda, auto");
  OSPREY_CHECK(c.base_momentum >= 0 && c.base_momentum <= c.max_momentum && c.max_momentum < 1,
               "config: need 0 <= base_momentum <= max_momentum < 1");
  OSPREY_CHECK(
      !(c.schedule == "onecycle" && c.cycle_momentum && c.optimizer == "sgd" && c.momentum == 0.0f),
      "config: onecycle with cycle_momentum needs sgd with momentum > 0 (or set "
      "cycle_momentum=false)");
  OSPREY_CHECK(c.precision == "f32" || c.precision == "bf16", "config: precision '", c.precision,
               "' is not one of f32, bf16");
  OSPREY_CHECK(c.augment_device == "cpu" || c.augment_device == "cuda", "config: augment_device '",
               c.augment_device, "' is not one of cpu, cuda");
  OSPREY_CHECK(c.augment_device == "cpu" || (c.device != "cpu" && c.pipeline_stages <= 1),
               "config: augment_device cuda needs device cuda (or auto) and no pipeline stages");
  OSPREY_CHECK(c.precision == "f32" || (c.pipeline_stages <= 1 && !c.sync_batchnorm),
               "config: precision bf16 does not run with pipeline stages or synchronized "
               "BatchNorm (use f32)");
  OSPREY_CHECK(c.communicator == "auto" || c.communicator == "nccl" || c.communicator == "mpi",
               "config: communicator '", c.communicator, "' is not one of auto, nccl, mpi");
  OSPREY_CHECK(c.mean.size() == c.std.size() && !c.mean.empty(),
               "config: mean and std need the same number (one per channel) of values");
  for (float s : c.std) OSPREY_CHECK(s > 0, "config: std values must be > 0");
  OSPREY_CHECK(c.clip_grad_norm >= 0, "config: clip_grad_norm must be >= 0 (0 = off)");
  OSPREY_CHECK(c.dropout >= 0 && c.dropout < 1, "config: dropout must be in [0, 1)");
  OSPREY_CHECK(c.test_fraction > 0 && c.test_fraction < 1,
               "config: test_fraction must be in (0, 1), got ", c.test_fraction);
  OSPREY_CHECK(c.channels == 0 || c.channels == 1 || c.channels == 3,
               "config: channels must be 0 (the dataset's), 1 or 3");
  OSPREY_CHECK(c.image_size >= 0 && c.augment_threads >= 0,
               "config: image_size and augment_threads must be >= 0");
  OSPREY_CHECK(c.pipeline_stages >= 1 && c.micro_batches >= 1,
               "config: pipeline_stages and micro_batches must be >= 1");
  OSPREY_CHECK(c.pipeline_stages == 1 || !c.sync_batchnorm,
               "config: sync_batchnorm is not available with pipeline stages");
  OSPREY_CHECK(c.stop_after_steps >= 0, "config: stop_after_steps must be >= 0 (0 = off)");
}

}  // namespace osprey::tools
