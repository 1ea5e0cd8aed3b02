// The training run configuration: defaults, a JSON file, then `--set key=value` overrides.
// Every key is declared once in config.cpp's table, which gives parsing, type checks, the
// list of valid keys in error messages, and the resolved JSON written beside the metrics.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace osprey::tools {

struct TrainConfig {
  // The run's folder under runs_dir, so one path component (validate_run_name): 1-255 bytes,
  // not "." or "..", no leading '-' (it would read as an option), no '/', backslash or control
  // characters.
  std::string name = "fashion_simple_cnn";
  std::string model = "simple_cnn";
  // fashion-mnist | mnist (IDX files in data_dir) | cifar10 (binary batches in data_dir) |
  // tmnist (the CSV file data_dir) | image_folder (one subfolder per class in data_dir, or
  // data_dir/train and data_dir/test). tmnist and image_folder without a test folder hold out
  // test_fraction of the images, chosen by seed.
  std::string dataset = "fashion-mnist";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  double test_fraction = 0.1;
  int image_size = 0;  // image_folder: resize every image to this square size (0 = as stored)
  int channels = 0;    // model input channels: 0 = the dataset's, 3 = grayscale replicated
  // Training augmentation: null (none), "seed" (the seed project's 224 pipeline), "cifar"
  // (pad 4 + crop + flip), or a list of transforms (data/augment.h). Normalisation with
  // mean/std is appended unless the list ends with its own normalize. Evaluation runs the
  // deterministic counterpart (resize / center crop + normalize).
  nlohmann::json augment = nullptr;
  int augment_threads = 0;  // OpenMP threads for augmentation (0 = OpenMP's default)
  int64_t limit_train = 0;  // use only the first N training images (0 = all)
  int64_t limit_test = 0;
  std::vector<float> mean = {0.2860f};  // per-channel normalisation of pixel / 255
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
  // onecycle: momentum (sgd) or beta1 (adam) cycles max -> base -> max against the rate, as
  // PyTorch's OneCycleLR does by default; it then overrides momentum / beta1.
  bool cycle_momentum = true;
  float base_momentum = 0.85f, max_momentum = 0.95f;
  float clip_grad_norm = 0.0f;  // 0 = off
  float label_smoothing = 0.0f;
  float width_mult = 1.0f;
  float dropout = 0.2f;  // classifier dropout, for models that have one (mobilenet_v2)
  uint64_t seed = 0;
  int threads = 0;              // 0 = every core
  std::string device = "auto";  // cpu | cuda | auto (the GPU when there is one)
  bool tf32 = false;            // cuda: GEMMs on TF32 tensor cores (fp32 accumulation)
  // Keep less for backward and recompute the rest (MobileNetV2: the blocks' expand and
  // depthwise outputs): less activation memory, identical gradients, a little more time.
  bool recompute_activations = false;
  // Activation storage: f32, or bf16 (mixed precision: f32 parameters, gradients, BatchNorm
  // statistics and classifier; float accumulation everywhere). mobilenet_v2 models only.
  std::string precision = "f32";
  // Where the training augmentation runs: cpu (the loader thread's OpenMP team) or cuda (batched
  // kernels on the training GPU, same images up to float rounding; needs device cuda).
  std::string augment_device = "cpu";
  std::string communicator = "auto";  // several ranks on cuda: nccl | mpi (staged) | auto
  std::string init_from;              // a PyTorch state_dict to fine-tune from ("" = none)
  int64_t stop_after_steps = 0;
  bool sync_batchnorm = false;
  int pipeline_stages = 1;  // > 1: GPipe stages over consecutive ranks (ranks = stages x replicas)
  int micro_batches = 1;    // micro-batches per step in a pipeline  // data parallel: BatchNorm
                            // statistics over all ranks' batches
  int64_t first_bucket_bytes = int64_t(1) << 20;  // data parallel: the first gradient bucket
  int64_t bucket_bytes =
      int64_t(25)
      << 20;  // and the others  // stop (saving last) after this many steps in all (0 = off)
  std::string runs_dir = "runs";
  bool progress = true;  // progress bar on a terminal
};

// Applies every key of a JSON object; unknown keys and wrong types fail naming the key (and,
// for unknown keys, the valid ones). `origin` names the source in messages.
void apply_json(TrainConfig& cfg, const nlohmann::json& j, const std::string& origin);
TrainConfig load_config_file(const std::string& path);
// "key=value": the value is read as JSON when it parses (numbers, true, [..]), else a string.
// Integer keys are range-checked (the range is in the message); JSON nested deeper than
// kMaxJsonDepth (engine/parse.h) is refused here and in config files.
void apply_override(TrainConfig& cfg, const std::string& assignment);
nlohmann::json to_json(const TrainConfig& cfg);
std::vector<std::string> config_keys();
void validate(const TrainConfig& cfg);
// Fails unless name is a safe run folder name (see TrainConfig::name).
void validate_run_name(const std::string& name);

}  // namespace osprey::tools
