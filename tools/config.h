// The training run configuration: defaults, a JSON file, then `--set key=value` overrides.
// Every key is declared once in config.cpp's table, which gives parsing, type checks, the
// list of valid keys in error messages, and the resolved JSON written beside the metrics.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace osprey::tools {

// Member meanings, types, defaults and allowed values are in config.cpp's table (printed by
// `osprey config --list` and `osprey train --help`), which also parses and checks every key.
struct TrainConfig {
  std::string name;
  std::string model = "simple_cnn";
  std::string dataset = "fashion-mnist";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  double test_fraction = 0.1;
  int image_size = 0;
  int channels = 0;
  nlohmann::json augment = nullptr;
  int augment_threads = 0;
  int64_t limit_train = 0;
  int64_t limit_test = 0;
  std::vector<float> mean = {0.2860f};
  std::vector<float> std = {0.3530f};
  int epochs = 10;
  int batch_size = 128;
  int eval_batch_size = 1000;
  std::string optimizer = "adam";
  float lr = 1e-3f;
  float weight_decay = 0.0f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float momentum = 0.9f;
  bool nesterov = false;
  std::string schedule = "constant";
  int step_size = 10;
  float gamma = 0.1f;
  float min_lr = 0.0f;
  float pct_start = 0.3f;
  bool cycle_momentum = true;
  float base_momentum = 0.85f, max_momentum = 0.95f;
  float clip_grad_norm = 0.0f;
  float label_smoothing = 0.0f;
  float width_mult = 1.0f;
  float dropout = 0.2f;
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "auto";
  bool tf32 = false;
  bool recompute_activations = false;
  std::string precision = "f32";
  std::string augment_device = "cpu";
  std::string communicator = "auto";
  std::string init_from;
  int64_t stop_after_steps = 0;
  bool sync_batchnorm = false;
  int pipeline_stages = 1;
  int micro_batches = 1;
  int64_t first_bucket_bytes = int64_t(1) << 20;
  int64_t bucket_bytes = int64_t(25) << 20;
  std::string runs_dir = "runs";
  bool progress = true;
  double progress_interval_s = 30.0;
  int64_t log_every_steps = 0;
  bool plot = true;
};

// One row of the key reference: what `osprey config --list` prints.
struct ConfigKeyInfo {
  std::string name;
  std::string type;           // int, float, bool, string, [float] or json
  std::string default_value;  // a default-constructed TrainConfig's value, as JSON
  std::string allowed;        // "adam|adamw|sgd", "[1, 1000000]", ">= 0", or "" (any)
  std::string meaning;
};
std::vector<ConfigKeyInfo> config_reference();

// Applies every key of a JSON object; unknown keys, wrong types and values outside a key's
// allowed set throw UsageError (tools/cli_suggest.h) naming the key and the nearest valid word.
// A top-level "provenance" object (what a run's config.json records about its making) is
// ignored, so a run's config.json reads back as a config. `origin` names the source in messages.
void apply_json(TrainConfig& cfg, const nlohmann::json& j, const std::string& origin);
// A config file: its relative data_dir and init_from are taken relative to the file's folder
// (runs_dir is not: output goes where osprey runs). Paths come out absolute.
TrainConfig load_config_file(const std::string& path);
// "key=value": the value is read as JSON when it parses (numbers, true, [..]), else a string.
// A relative data_dir or init_from is taken relative to the working directory, made absolute.
// Integer keys are range-checked (the range is in the message); JSON nested deeper than
// kMaxJsonDepth (engine/parse.h) is refused here and in config files.
void apply_override(TrainConfig& cfg, const std::string& assignment);
// Floats are written as the shortest decimal that reads back to the same float (0.001).
nlohmann::json to_json(const TrainConfig& cfg);
std::vector<std::string> config_keys();
// Checks values against each other and the allowed sets; throws UsageError.
void validate(const TrainConfig& cfg);
// Fails unless name is a safe run folder name (see the name key in config.cpp).
void validate_run_name(const std::string& name);

}  // namespace osprey::tools
