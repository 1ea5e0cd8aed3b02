#include "tools/config.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "engine/error.h"
#include "engine/parse.h"

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

// A value for messages: at most 60 characters, control bytes escaped.
std::string show(const json& v) {
  std::string s = v.dump();
  return printable(s.size() > 60 ? s.substr(0, 57) + "..." : s);
}

// Whether the JSON integer v lies in [lo, hi] (compared exactly: get<int>() would wrap).
bool in_range(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return hi >= 0 && u <= uint64_t(hi) && (lo <= 0 || u >= uint64_t(lo));
  }
  const int64_t x = v.get<int64_t>();
  return x >= lo && x <= hi;
}

// Numbers must also fit the member: a float key given 1e300 would become infinity.
template <typename T>
bool fits(const json& v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::fabs(v.get<double>()) <= double(std::numeric_limits<T>::max());
  } else if constexpr (std::is_same_v<T, std::vector<float>>) {
    for (const auto& e : v)
      if (!fits<float>(e)) return false;
    return true;
  } else {
    return true;
  }
}

// Integer members take a range [lo, hi] (by default the member type's), checked before the
// conversion; the message names the key and the range.
template <typename T>
Field field(T TrainConfig::*member, int64_t lo = 0, int64_t hi = 0) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    if (lo == 0 && hi == 0) lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  }
  return Field{[member, lo, hi](TrainConfig& c, const json& v, const std::string& where) {
                 if (!type_ok<T>(v)) fail(where, ": '", show(v), "' is not ", type_name<T>());
                 if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
                   if (!in_range(v, lo, hi))
                     fail(where, ": ", show(v), " is out of range: must be in [", lo, ", ", hi,
                          "]");
                 }
                 if (!fits<T>(v)) fail(where, ": ", show(v), " is too large for a float");
                 c.*member = v.get<T>();
               },
               [member](const TrainConfig& c) { return json(c.*member); }};
}

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

const std::map<std::string, Field>& fields() {
  static const std::map<std::string, Field> f = {
      {"name", field(&TrainConfig::name)},
      {"model", field(&TrainConfig::model)},
      {"dataset", field(&TrainConfig::dataset)},
      {"data_dir", field(&TrainConfig::data_dir)},
      {"test_fraction", field(&TrainConfig::test_fraction)},
      {"image_size", field(&TrainConfig::image_size, 0, 1 << 15)},
      {"channels", field(&TrainConfig::channels, 0, 3)},
      {"augment", field(&TrainConfig::augment)},
      {"augment_threads", field(&TrainConfig::augment_threads, 0, 4096)},
      {"limit_train", field(&TrainConfig::limit_train, 0, kMaxInt64)},
      {"limit_test", field(&TrainConfig::limit_test, 0, kMaxInt64)},
      {"mean", field(&TrainConfig::mean)},
      {"std", field(&TrainConfig::std)},
      {"epochs", field(&TrainConfig::epochs, 1, 1000000)},
      {"batch_size", field(&TrainConfig::batch_size, 1, 1 << 20)},
      {"eval_batch_size", field(&TrainConfig::eval_batch_size, 1, 1 << 20)},
      {"optimizer", field(&TrainConfig::optimizer)},
      {"lr", field(&TrainConfig::lr)},
      {"weight_decay", field(&TrainConfig::weight_decay)},
      {"beta1", field(&TrainConfig::beta1)},
      {"beta2", field(&TrainConfig::beta2)},
      {"eps", field(&TrainConfig::eps)},
      {"momentum", field(&TrainConfig::momentum)},
      {"nesterov", field(&TrainConfig::nesterov)},
      {"schedule", field(&TrainConfig::schedule)},
      {"step_size", field(&TrainConfig::step_size, 1, kMaxInt)},
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
      {"threads", field(&TrainConfig::threads, 0, 4096)},
      {"device", field(&TrainConfig::device)},
      {"tf32", field(&TrainConfig::tf32)},
      {"recompute_activations", field(&TrainConfig::recompute_activations)},
      {"precision", field(&TrainConfig::precision)},
      {"augment_device", field(&TrainConfig::augment_device)},
      {"communicator", field(&TrainConfig::communicator)},
      {"runs_dir", field(&TrainConfig::runs_dir)},
      {"init_from", field(&TrainConfig::init_from)},
      {"stop_after_steps", field(&TrainConfig::stop_after_steps, 0, kMaxInt64)},
      {"first_bucket_bytes", field(&TrainConfig::first_bucket_bytes, 1, int64_t(1) << 40)},
      {"sync_batchnorm", field(&TrainConfig::sync_batchnorm)},
      {"pipeline_stages", field(&TrainConfig::pipeline_stages, 1, 1024)},
      {"micro_batches", field(&TrainConfig::micro_batches, 1, 1 << 16)},
      {"bucket_bytes", field(&TrainConfig::bucket_bytes, 1, int64_t(1) << 40)},
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
  OSPREY_CHECK(it != fields().end(), origin, ": unknown config key '", printable(key),
               "' (valid keys: ", valid_keys(), ")");
  it->second.set(cfg, value, origin + ": key '" + key + "'");
}

}  // namespace

void apply_json(TrainConfig& cfg, const json& j, const std::string& origin) {
  OSPREY_CHECK(j.is_object(), origin, ": a config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) apply_key(cfg, it.key(), it.value(), origin);
}

TrainConfig load_config_file(const std::string& path) {
  const std::string origin = "config file '" + printable(path) + "'";
  std::ifstream in(path);
  OSPREY_CHECK(in.good(), "cannot open ", origin);
  std::stringstream text;
  text << in.rdbuf();
  check_json_depth(text.str(), origin);
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    fail(origin, " is not valid JSON: ", e.what());
  }
  TrainConfig cfg;
  apply_json(cfg, j, origin);
  return cfg;
}

void apply_override(TrainConfig& cfg, const std::string& assignment) {
  std::string shown =
      printable(assignment.size() > 80 ? assignment.substr(0, 77) + "..." : assignment);
  auto eq = assignment.find('=');
  OSPREY_CHECK(eq != std::string::npos && eq > 0, "--set '", shown, "': expected key=value");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  check_json_depth(text, "--set " + shown);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  apply_key(cfg, key, value, "--set " + shown);
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

void validate_run_name(const std::string& name) {
  bool safe = !name.empty() && name.size() <= 255 && name != "." && name != ".." && name[0] != '-';
  for (unsigned char ch : name) safe = safe && ch >= 0x20 && ch != 0x7f && ch != '/' && ch != '\\';
  OSPREY_CHECK(safe, "config: name '", printable(name),
               "' must be one safe path component: 1-255 bytes, not '.' or '..', no leading '-', "
               "no '/', '\\' or control characters");
}

void validate(const TrainConfig& c) {
  validate_run_name(c.name);
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
