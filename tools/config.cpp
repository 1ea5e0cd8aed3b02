#include "tools/config.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "engine/parse.h"
#include "kernels/error.h"
#include "models/registry.h"
#include "tools/cli_suggest.h"
#include "tools/json_member.h"

namespace osprey::tools {
namespace {

using json = nlohmann::json;

// One config key: how to read and write it, and its row of the reference.
struct Field {
  std::function<void(TrainConfig&, const json&, const std::string&)> set;
  std::function<json(const TrainConfig&)> get;
  std::string type, allowed, meaning;
  // When set, a string value must be one of these (asked when a value is checked: the model
  // names include those a program registered).
  std::function<std::vector<std::string>()> choices;
  bool path = false;  // a relative value is resolved against a base folder
};

// Text for messages: at most 60 characters, control bytes escaped.
std::string show_text(const std::string& s) {
  return printable(s.size() > 60 ? s.substr(0, 57) + "..." : s);
}
std::string show(const json& v) {
  return show_text(v.dump());
}

std::string join(const std::vector<std::string>& words, const char* separator) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : separator) + w;
  return s;
}

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// Integer members take a range [lo, hi] (by default the member type's), checked before the
// conversion; the message names the key and the range.
template <typename T>
Field field(T TrainConfig::*member, const char* meaning, int64_t lo = 0, int64_t hi = 0) {
  Field f;
  f.type = json_member::type_label<T>();
  f.meaning = meaning;
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    if (lo == 0 && hi == 0) lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
    f.allowed = hi == kMaxInt64 ? ">= " + std::to_string(lo)
                                : "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    f.allowed = ">= 0";
  }
  f.set = [member, lo, hi](TrainConfig& c, const json& v, const std::string& where) {
    if (!json_member::type_ok<T>(v))
      usage_fail(where, ": '", show(v), "' is not ", json_member::type_name<T>());
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      if (!json_member::in_range(v, lo, hi))
        usage_fail(where, ": ", show(v), " is out of range: must be in [", lo, ", ", hi, "]");
    }
    if (!json_member::fits<T>(v)) usage_fail(where, ": ", show(v), " is too large for a float");
    c.*member = v.get<T>();
  };
  f.get = [member](const TrainConfig& c) { return json_member::to_json_value(c.*member); };
  return f;
}

// A key whose string values form a fixed set; `allowed` describes other forms it takes.
template <typename T>
Field choice(T TrainConfig::*member, std::vector<std::string> choices, const char* meaning,
             const std::string& allowed = "") {
  Field f = field(member, meaning);
  f.allowed = allowed.empty() ? join(choices, "|") : allowed;
  f.choices = [choices] { return choices; };
  return f;
}

// The built-in models and any a program registered (models::register_model) by the time a
// value is checked.
Field model_field() {
  Field f = choice(&TrainConfig::model, models::model_names(),
                   "The network to train: a built-in one, or one a program registered "
                   "(models::register_model)");
  f.choices = [] { return models::model_names(); };
  return f;
}

Field path_field(std::string TrainConfig::*member, const char* meaning) {
  Field f = field(member, meaning);
  f.path = true;
  return f;
}

using FieldTable = std::map<std::string, Field>;

// What is trained: the run's name, the model, and the dataset with its preprocessing.
FieldTable data_fields() {
  return {
      {"name", field(&TrainConfig::name,
                     "The run's folder under runs_dir: one path component of 1-255 bytes, not . or "
                     ".., no leading '-', no '/', '\\' or control characters. \"\" (default): "
                     "<model>_<dataset>_<N> with the next free N")},
      {"model", model_field()},
      {"dataset",
       choice(&TrainConfig::dataset,
              {"fashion-mnist", "mnist", "cifar10", "tmnist", "image_folder", "custom"},
              "fashion-mnist, mnist: IDX files in data_dir; cifar10: binary batches in data_dir; "
              "tmnist: the CSV file data_dir, or a folder with train.csv and test.csv (osprey data "
              "typefaces); image_folder: one subfolder per class in data_dir, "
              "or data_dir/train and data_dir/test. tmnist and image_folder without a test folder "
              "hold out test_fraction of the images, chosen by seed; custom: a program's own "
              "splits (TrainOptions::data of the library)")},
      {"data_dir",
       path_field(&TrainConfig::data_dir,
                  "Where the dataset is (a folder, or tmnist's CSV file; osprey data get fetches "
                  "one). Relative: "
                  "to the config file's folder in a file, to the working directory "
                  "in --set")},
      {"test_fraction", field(&TrainConfig::test_fraction,
                              "Share of the images held out for testing when the dataset has no "
                              "test split (tmnist, image_folder), in (0, 1)")},
      {"image_size",
       field(&TrainConfig::image_size,
             "image_folder: resize every image to this square size (0 = as stored)", 0, 1 << 15)},
      {"channels",
       field(&TrainConfig::channels,
             "Model input channels: 0 = the dataset's, 1, or 3 (grayscale replicated)", 0, 3)},
      {"augment",
       choice(&TrainConfig::augment, {"seed", "cifar"},
              "Training augmentation: null (none), \"seed\" (the seed project's 224 pipeline), "
              "\"cifar\" (pad 4 + crop + flip), or a list of transforms (data/augment.h). "
              "Normalisation with mean/std is appended unless the list ends with its own "
              "normalize. Evaluation runs the deterministic counterpart (resize / center crop + "
              "normalize)",
              "null|seed|cifar|[...]")},
      {"augment_threads", field(&TrainConfig::augment_threads,
                                "OpenMP threads for augmentation (0 = OpenMP's default)", 0, 4096)},
      {"limit_train", field(&TrainConfig::limit_train,
                            "Use only the first N training images (0 = all)", 0, kMaxInt64)},
      {"limit_test",
       field(&TrainConfig::limit_test, "Use only the first N test images (0 = all)", 0, kMaxInt64)},
      {"mean", field(&TrainConfig::mean,
                     "Per-channel normalisation: the mean of pixel / 255 (one value per channel, "
                     "as many as std)")},
      {"std", field(&TrainConfig::std,
                    "Per-channel normalisation: the standard deviation of pixel / 255 (> 0)")},
  };
}

// How it trains: epochs and batches, the optimizer and its schedule, regularisation.
FieldTable training_fields() {
  return {
      {"epochs", field(&TrainConfig::epochs, "Passes over the training set", 1, 1000000)},
      {"batch_size",
       field(&TrainConfig::batch_size,
             "Training images per step, split over the data-parallel replicas", 1, 1 << 20)},
      {"eval_batch_size",
       field(&TrainConfig::eval_batch_size, "Images per forward when evaluating", 1, 1 << 20)},
      {"optimizer", choice(&TrainConfig::optimizer, {"adam", "adamw", "sgd"},
                           "The update rule (adamw: decoupled weight decay)")},
      {"lr", field(&TrainConfig::lr, "Learning rate (> 0); the schedule scales it")},
      {"weight_decay", field(&TrainConfig::weight_decay, "Weight decay (0 = none)")},
      {"beta1", field(&TrainConfig::beta1, "adam, adamw: decay of the gradient average")},
      {"beta2", field(&TrainConfig::beta2, "adam, adamw: decay of the squared-gradient average")},
      {"eps", field(&TrainConfig::eps, "adam, adamw: added to the denominator")},
      {"momentum", field(&TrainConfig::momentum, "sgd: momentum (0 = none)")},
      {"nesterov", field(&TrainConfig::nesterov, "sgd: Nesterov momentum (needs momentum > 0)")},
      {"schedule", choice(&TrainConfig::schedule, {"constant", "step", "cosine", "onecycle"},
                          "The learning rate over training: constant; step (times gamma every "
                          "step_size epochs); cosine (annealed to min_lr); onecycle (PyTorch's "
                          "OneCycleLR peaking at lr after pct_start of the steps)")},
      {"step_size", field(&TrainConfig::step_size, "step: epochs between decays", 1, kMaxInt)},
      {"gamma", field(&TrainConfig::gamma, "step: the factor of each decay")},
      {"min_lr", field(&TrainConfig::min_lr, "cosine: the final learning rate")},
      {"pct_start", field(&TrainConfig::pct_start,
                          "onecycle: the share of the steps spent warming up, in (0, 1)")},
      {"cycle_momentum",
       field(&TrainConfig::cycle_momentum,
             "onecycle: momentum (sgd) or beta1 (adam) cycles max -> base -> max against the "
             "rate, as PyTorch's OneCycleLR does by default; it then overrides momentum / beta1")},
      {"base_momentum",
       field(&TrainConfig::base_momentum, "cycle_momentum: the lowest momentum (or beta1)")},
      {"max_momentum",
       field(&TrainConfig::max_momentum, "cycle_momentum: the highest momentum (or beta1), < 1")},
      {"clip_grad_norm",
       field(&TrainConfig::clip_grad_norm, "Clip the gradients' global norm to this (0 = off)")},
      {"label_smoothing",
       field(&TrainConfig::label_smoothing, "Cross-entropy label smoothing (0 = none)")},
      {"width_mult",
       field(&TrainConfig::width_mult, "mobilenet_v2 models: the channel width multiplier")},
      {"dropout", field(&TrainConfig::dropout,
                        "Classifier dropout, for models that have one (mobilenet_v2), in [0, 1)")},
      {"seed", field(&TrainConfig::seed,
                     "Seeds initialisation, shuffling, augmentation and held-out test splits")},
  };
}

// Where and how it computes: threads, device, precision and the ranks' parallelism.
FieldTable execution_fields() {
  return {
      {"threads", field(&TrainConfig::threads, "CPU threads (0 = every core)", 0, 4096)},
      {"device", choice(&TrainConfig::device, {"cpu", "cuda", "auto"},
                        "Where training runs (auto: the GPU when there is one)")},
      {"tf32", field(&TrainConfig::tf32, "cuda: GEMMs on TF32 tensor cores (fp32 accumulation)")},
      {"recompute_activations",
       field(&TrainConfig::recompute_activations,
             "Keep less for backward and recompute the rest (MobileNetV2: the blocks' expand and "
             "depthwise outputs): less activation memory, identical gradients, a little more "
             "time")},
      {"precision",
       choice(&TrainConfig::precision, {"f32", "bf16"},
              "Activation storage: f32, or bf16 (mixed precision: f32 parameters, gradients, "
              "BatchNorm statistics and classifier; float accumulation everywhere). mobilenet_v2 "
              "models only")},
      {"augment_device",
       choice(&TrainConfig::augment_device, {"cpu", "cuda"},
              "Where the training augmentation runs: cpu (the loader thread's OpenMP team) or cuda "
              "(batched kernels on the training GPU, same images up to float rounding; needs "
              "device cuda)")},
      {"communicator",
       choice(&TrainConfig::communicator, {"auto", "nccl", "mpi"},
              "Several ranks on cuda: nccl, mpi (staged through the host) or auto")},
      {"first_bucket_bytes",
       field(&TrainConfig::first_bucket_bytes,
             "Data parallel: the first gradient bucket, all-reduced while backward goes on", 1,
             int64_t(1) << 40)},
      {"sync_batchnorm",
       field(&TrainConfig::sync_batchnorm,
             "Data parallel: BatchNorm statistics over all ranks' batches (no pipeline stages)")},
      {"pipeline_stages",
       field(&TrainConfig::pipeline_stages,
             "> 1: GPipe stages over consecutive ranks (ranks = stages x replicas)", 1, 1024)},
      {"micro_batches",
       field(&TrainConfig::micro_batches, "Micro-batches per step in a pipeline", 1, 1 << 16)},
      {"bucket_bytes",
       field(&TrainConfig::bucket_bytes, "Data parallel: the gradient buckets after the first", 1,
             int64_t(1) << 40)},
  };
}

// What a run reads and writes besides its data, and when it stops early.
FieldTable run_fields() {
  return {
      {"runs_dir", field(&TrainConfig::runs_dir,
                         "Where run folders go. Relative: to the working directory, in a config "
                         "file too (output goes where you run, not beside the config)")},
      {"init_from", path_field(&TrainConfig::init_from,
                               "A PyTorch state_dict (.safetensors) to fine-tune from (\"\" = "
                               "none); relative like data_dir")},
      {"stop_after_steps",
       field(&TrainConfig::stop_after_steps,
             "Stop (saving last) after this many steps in all (0 = off)", 0, kMaxInt64)},
      {"progress",
       field(&TrainConfig::progress, "A progress bar on a terminal, plain lines without one")},
      {"progress_interval_s",
       field(&TrainConfig::progress_interval_s,
             "Without a terminal: a progress line this often, in seconds (0 = none)")},
      {"log_every_steps", field(&TrainConfig::log_every_steps,
                                "A line in steps.jsonl every N steps (0 = none)", 0, kMaxInt64)},
      {"plot", field(&TrainConfig::plot,
                     "Draw curves.png in the run folder when a training ends or stops")},
  };
}

// A std::map lists the keys by name (the reference, to_json) whatever their group.
const FieldTable& fields() {
  static const FieldTable all = [] {
    FieldTable t = data_fields();
    for (auto group : {training_fields, execution_fields, run_fields}) {
      FieldTable g = group();
      t.merge(g);
      OSPREY_CHECK(g.empty(), "config: key '", g.begin()->first, "' is in two groups");
    }
    return t;
  }();
  return all;
}

void check_choice(const Field& f, const json& v, const std::string& where) {
  if (!f.choices || !v.is_string()) return;
  const std::string& s = v.get_ref<const std::string&>();
  const std::vector<std::string> valid = f.choices();
  if (std::find(valid.begin(), valid.end(), s) == valid.end())
    usage_fail(where, ": '", show_text(s), "' is not one of ", join(valid, ", "),
               did_you_mean(s, valid));
}

// `base`: the folder a relative path value is taken from ("" = keep it as given).
void apply_key(TrainConfig& cfg, const std::string& key, const json& value,
               const std::string& origin, const std::filesystem::path& base) {
  auto it = fields().find(key);
  OSPREY_USAGE_CHECK(it != fields().end(), origin, ": unknown config key '", show_text(key), "'",
                     did_you_mean(key, config_keys()), "; osprey config --list shows every key");
  const Field& f = it->second;
  const std::string where = origin + ": key '" + key + "'";
  check_choice(f, value, where);
  f.set(cfg, value, where);
  if (f.path && !base.empty()) {
    const std::filesystem::path p = f.get(cfg).get<std::string>();
    if (!p.empty() && p.is_relative()) f.set(cfg, (base / p).lexically_normal().string(), where);
  }
}

void apply_object(TrainConfig& cfg, const json& j, const std::string& origin,
                  const std::filesystem::path& base) {
  OSPREY_USAGE_CHECK(j.is_object(), origin, ": a config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "provenance") {  // how a run was made: recorded, not configuration
      OSPREY_USAGE_CHECK(it.value().is_object(), origin, ": 'provenance' must be an object");
      continue;
    }
    apply_key(cfg, it.key(), it.value(), origin, base);
  }
}

}  // namespace

void apply_json(TrainConfig& cfg, const json& j, const std::string& origin) {
  apply_object(cfg, j, origin, {});
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
  apply_object(cfg, j, origin, std::filesystem::absolute(path).parent_path());
  return cfg;
}

void apply_override(TrainConfig& cfg, const std::string& assignment) {
  std::string shown =
      printable(assignment.size() > 80 ? assignment.substr(0, 77) + "..." : assignment);
  auto eq = assignment.find('=');
  OSPREY_USAGE_CHECK(eq != std::string::npos && eq > 0, "--set '", shown, "': expected key=value");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  check_json_depth(text, "--set " + shown);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  apply_key(cfg, key, value, "--set " + shown, std::filesystem::current_path());
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

std::vector<ConfigKeyInfo> config_reference() {
  const TrainConfig defaults;
  std::vector<ConfigKeyInfo> rows;
  for (const auto& [name, f] : fields())
    rows.push_back({name, f.type, f.get(defaults).dump(), f.allowed, f.meaning});
  return rows;
}

void validate_run_name(const std::string& name) {
  bool safe = !name.empty() && name.size() <= 255 && name != "." && name != ".." && name[0] != '-';
  for (unsigned char ch : name) safe = safe && ch >= 0x20 && ch != 0x7f && ch != '/' && ch != '\\';
  OSPREY_USAGE_CHECK(
      safe, "config: name '", printable(name),
      "' must be one safe path component: 1-255 bytes, not '.' or '..', no leading '-', "
      "no '/', '\\' or control characters");
}

void validate(const TrainConfig& c) {
  for (const auto& [key, f] : fields()) check_choice(f, f.get(c), "config: key '" + key + "'");
  if (!c.name.empty()) validate_run_name(c.name);
  OSPREY_USAGE_CHECK(c.progress_interval_s >= 0,
                     "config: progress_interval_s must be >= 0 (0 = none)");
  OSPREY_USAGE_CHECK(c.epochs >= 1, "config: epochs must be >= 1, got ", c.epochs);
  OSPREY_USAGE_CHECK(c.batch_size >= 1 && c.eval_batch_size >= 1,
                     "config: batch sizes must be >= 1");
  OSPREY_USAGE_CHECK(c.lr > 0, "config: lr must be > 0, got ", c.lr);
  OSPREY_USAGE_CHECK(c.limit_train >= 0 && c.limit_test >= 0, "config: limits must be >= 0");
  OSPREY_USAGE_CHECK(c.threads >= 0, "config: threads must be >= 0 (0 = all cores)");
  OSPREY_USAGE_CHECK(
      c.base_momentum >= 0 && c.base_momentum <= c.max_momentum && c.max_momentum < 1,
      "config: need 0 <= base_momentum <= max_momentum < 1");
  OSPREY_USAGE_CHECK(
      !(c.schedule == "onecycle" && c.cycle_momentum && c.optimizer == "sgd" && c.momentum == 0.0f),
      "config: onecycle with cycle_momentum needs sgd with momentum > 0 (or set "
      "cycle_momentum=false)");
  OSPREY_USAGE_CHECK(
      c.augment_device == "cpu" || (c.device != "cpu" && c.pipeline_stages <= 1),
      "config: augment_device cuda needs device cuda (or auto) and no pipeline stages");
  OSPREY_USAGE_CHECK(c.precision == "f32" || (c.pipeline_stages <= 1 && !c.sync_batchnorm),
                     "config: precision bf16 does not run with pipeline stages or synchronized "
                     "BatchNorm (use f32)");
  OSPREY_USAGE_CHECK(c.mean.size() == c.std.size() && !c.mean.empty(),
                     "config: mean and std need the same number (one per channel) of values");
  for (float s : c.std) OSPREY_USAGE_CHECK(s > 0, "config: std values must be > 0");
  OSPREY_USAGE_CHECK(c.clip_grad_norm >= 0, "config: clip_grad_norm must be >= 0 (0 = off)");
  OSPREY_USAGE_CHECK(c.dropout >= 0 && c.dropout < 1, "config: dropout must be in [0, 1)");
  OSPREY_USAGE_CHECK(c.test_fraction > 0 && c.test_fraction < 1,
                     "config: test_fraction must be in (0, 1), got ", c.test_fraction);
  OSPREY_USAGE_CHECK(c.channels == 0 || c.channels == 1 || c.channels == 3,
                     "config: channels must be 0 (the dataset's), 1 or 3");
  OSPREY_USAGE_CHECK(c.image_size >= 0 && c.augment_threads >= 0,
                     "config: image_size and augment_threads must be >= 0");
  OSPREY_USAGE_CHECK(c.pipeline_stages >= 1 && c.micro_batches >= 1,
                     "config: pipeline_stages and micro_batches must be >= 1");
  OSPREY_USAGE_CHECK(c.pipeline_stages == 1 || !c.sync_batchnorm,
                     "config: sync_batchnorm is not available with pipeline stages");
  OSPREY_USAGE_CHECK(c.stop_after_steps >= 0, "config: stop_after_steps must be >= 0 (0 = off)");
}

}  // namespace osprey::tools
