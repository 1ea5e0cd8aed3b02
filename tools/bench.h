// `osprey bench train`: times training steps (forward, loss, backward, optimizer) on synthetic
// data after a warm-up, and prints one JSON line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "dist/communicator.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tools/config.h"

namespace osprey::tools {

struct BenchTrainOptions {
  std::string model = "simple_cnn";
  int batch = 64;
  int threads = 0;
  int steps = 20;
  int warmup = 3;
  int in_channels = 1;
  int size = 28;
  int classes = 10;
  float width_mult = 1.0f;
  std::string optimizer = "adam";
  std::string device = "cpu";
  std::string dtype = "f32";
  bool tf32 = false;
  bool recompute = false;   // Model::set_recompute_activations
  bool profile = false;     // then time every op over extra steps (device synchronised per op)
  int pipeline_stages = 1;  // > 1: GPipe stages over consecutive ranks, replicas of them
  int micro_batches = 1;
};

// The options' model (name, input shape, classes, width) with its initial weights, and a batch
// of standard-normal inputs for it.
std::unique_ptr<Model> bench_model(const BenchTrainOptions& o);
Tensor random_batch(const BenchTrainOptions& o, Rng& rng);

// With several ranks, batch is per rank (per pipeline with stages), gradients are averaged as
// in training, and images_per_s counts all ranks (the slowest rank's time).
nlohmann::json bench_train(const BenchTrainOptions& opts, dist::Communicator& comm);

// `osprey bench inference`: eval-mode forward of the training graph against the model's
// inference form (folded BatchNorm, fused blocks), alternating, on the same random batch;
// also reports how far apart their logits are. Uses the model-shape, batch, steps, threads,
// device and tf32 fields of the options.
nlohmann::json bench_inference(const BenchTrainOptions& opts);

// `osprey bench loader`: how many images/s the input pipeline of a training config (dataset
// reading, augmentation, normalisation on the loader thread and its OpenMP team) delivers,
// over `batches` batches after one warm-up batch: what a GPU needs the CPU to keep up with.
nlohmann::json bench_loader(const TrainConfig& cfg, int batches);

// `osprey bench gemm`: a CPU roofline. The machine's measured fp32 GEMM peak (the best of a
// large square sgemm), then the options' training step on the CPU with every GEMM recorded:
// one JSON object per GEMM shape (calls and time per step, GFLOP/s, fraction of the peak) and
// one for the whole step (GEMM FLOPs and share of the step's time).
nlohmann::json bench_gemm(const BenchTrainOptions& opts);

// `osprey bench conv`: on every dense convolution of the models' training steps (model "all"
// or one model), our kernels, oneDNN's convolution primitives (weights reordered into their
// format and the weight gradient back, each call) and what conv2d_forward / conv2d_backward
// pick per pass: one JSON object per shape (the best ms of forward, dx and dw of each over
// `steps` alternating runs) and one per model with the step's totals. Uses the model, threads,
// steps and warmup fields.
nlohmann::json bench_conv(const BenchTrainOptions& opts);

}  // namespace osprey::tools
