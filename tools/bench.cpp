#include "tools/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "data/gpu_augment.h"
#include "dist/gradient_bucketer.h"
#include "dist/nccl_communicator.h"
#include "dist/pipeline.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/profiler.h"
#include "kernels/cpu/threads.h"
#include "models/registry.h"
#include "tools/datasets.h"

namespace osprey::tools {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::unique_ptr<Model> bench_model(const BenchTrainOptions& o) {
  models::ModelSpec spec;
  spec.name = o.model;
  spec.in_channels = o.in_channels;
  spec.height = spec.width = o.size;
  spec.num_classes = o.classes;
  spec.width_mult = o.width_mult;
  return models::create_model(spec);
}

Tensor random_batch(const BenchTrainOptions& o, Rng& rng) {
  Tensor x = Tensor::empty({o.batch, o.size, o.size, o.in_channels});
  float* px = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] = float(rng.normal());
  return x;
}

namespace {

// The options' model on the device, with their activation dtype and recomputation.
std::unique_ptr<Model> bench_train_model(const BenchTrainOptions& o, Device device) {
  auto model = bench_model(o);
  allow_tf32(o.tf32);
  model->set_recompute_activations(o.recompute);
  model->set_activation_dtype(o.dtype == "bf16" ? DType::bf16 : DType::f32);
  model->to(device);
  return model;
}

struct LabelledBatch {
  Tensor x, y;
};

// Random inputs and labels on the device, drawn from `rng`.
LabelledBatch synthetic_batch(const BenchTrainOptions& o, Rng& rng, Device device) {
  Tensor x = random_batch(o, rng);
  std::vector<int64_t> labels(size_t(o.batch));
  for (auto& l : labels) l = int64_t(rng.next_u64() % uint64_t(o.classes));
  Tensor y = Tensor::from_labels(labels);
  return {x.to(device), y.to(device)};
}

// Seconds of `steps` steps after `warmup` ones, measured between an idle device and an idle
// device; the device's peak memory counts from the end of the warm-up.
double time_steps(const std::function<void()>& step, int warmup, int steps, Device device) {
  for (int i = 0; i < warmup; ++i) step();
  synchronize(device);
  reset_peak_device_memory(device);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  synchronize(device);
  return seconds_since(t0);
}

// The job is as fast as its slowest rank.
double slowest_rank(double seconds, dist::Communicator& comm) {
  if (comm.size() == 1) return seconds;
  std::vector<double> all(size_t(comm.size()), 0.0);
  all[size_t(comm.rank())] = seconds;
  comm.allreduce_sum(all.data(), int64_t(all.size()));
  return *std::max_element(all.begin(), all.end());
}

// Extra steps with the device synchronised around every op: each op's own time per step.
nlohmann::json profile_steps(const std::function<void()>& step, int steps, Device device) {
  profiler::reset();
  profiler::enable(true, device);
  for (int i = 0; i < steps; ++i) step();
  profiler::enable(false);
  double total = 0.0;
  for (const auto& e : profiler::report()) total += e.ms;
  nlohmann::json profile = nlohmann::json::array();
  for (const auto& e : profiler::report())
    profile.push_back({{"op", e.name},
                       {"calls_per_step", double(e.calls) / steps},
                       {"ms_per_step", e.ms / steps},
                       {"share", total > 0 ? e.ms / total : 0.0}});
  return profile;
}

}  // namespace

nlohmann::json bench_train(const BenchTrainOptions& o, dist::Communicator& comm) {
  const Device device = resolve_device(o.device);
  OSPREY_CHECK(o.dtype == "f32" || o.dtype == "bf16", "bench: dtype '", o.dtype,
               "' is not supported (valid: f32, bf16)");
  OSPREY_CHECK(o.dtype == "f32" || o.pipeline_stages == 1,
               "bench: bf16 does not run with pipeline stages");
  // Several GPU ranks average their gradients over NCCL (MPI staging when built without it).
  std::unique_ptr<dist::Communicator> nccl = dist::make_gradient_communicator(comm, device, "auto");
  dist::Communicator& grad_comm = nccl ? *nccl : comm;
  OSPREY_CHECK(o.batch >= 1 && o.steps >= 1 && o.warmup >= 0,
               "bench: batch and steps must be >= 1");
  int threads = cpu::set_num_threads(o.threads);
  auto model = bench_train_model(o, device);
  dist::broadcast_state(model->params(), grad_comm);
  OptimizerOptions oo;
  oo.kind = o.optimizer;
  auto optimizer = make_optimizer(model->params(), oo);
  const int stages = o.pipeline_stages;
  dist::PipelineGroups groups = dist::split_pipeline(comm, stages);
  std::unique_ptr<dist::PipelineSchedule> schedule;
  // Pipeline stages average their gradients over the replica group once per step (below); a
  // bucketer on that group would also launch its own all-reduces from the hooks of every
  // micro-batch's backward, interleaved differently on each replica (MPI_ERR_TRUNCATE).
  std::optional<dist::GradientBucketer> bucketer;
  if (stages == 1) bucketer.emplace(model->params(), grad_comm);

  Rng rng(42 + uint64_t(comm.rank() / stages));  // each data-parallel replica its own shard
  const LabelledBatch batch = synthetic_batch(o, rng, device);
  const Tensor &x = batch.x, &y = batch.y;
  if (stages > 1)
    schedule = std::make_unique<dist::PipelineSchedule>(
        *model, dist::plan_pipeline(*model, x, stages, comm), *groups.pipe);
  auto step = [&] {
    optimizer->zero_grad();
    if (schedule) {
      schedule->train_step(x, y, o.micro_batches);
      Tensor g = model->params().flat_grad();  // whole buffer: other stages' parts are zero
      groups.group->allreduce_average_async(g.ptr<float>(), g.numel());
      groups.group->wait_all();
    } else {
      Tensor loss = ops::softmax_cross_entropy(model->forward(x), y);
      loss.backward();
      bucketer->finish();
    }
    optimizer->step();
  };
  const double seconds = slowest_rank(time_steps(step, o.warmup, o.steps, device), comm);
  nlohmann::json profile = o.profile ? profile_steps(step, o.steps, device) : nlohmann::json();
  nlohmann::json result = {
      {"bench", "train"},
      {"model", o.model},
      {"device", device_description(device)},
      {"dtype", o.dtype},
      {"tf32", o.tf32},
      {"recompute_activations", o.recompute},
      {"batch", o.batch},
      {"size", o.size},
      {"threads", threads},
      {"ranks", comm.size()},
      {"communicator", grad_comm.name()},
      {"pipeline_stages", stages},
      {"micro_batches", o.micro_batches},
      {"steps", o.steps},
      {"ms_per_step", 1e3 * seconds / o.steps},
      {"images_per_s", double(o.batch) * groups.replicas * o.steps / seconds},
      {"peak_device_memory_mb", double(peak_device_memory(device)) / (1 << 20)}};
  if (o.profile) result["profile"] = profile;
  return result;
}

nlohmann::json bench_inference(const BenchTrainOptions& o) {
  const Device device = resolve_device(o.device);
  OSPREY_CHECK(o.batch >= 1 && o.steps >= 1 && o.warmup >= 0,
               "bench: batch and steps must be >= 1");
  const int threads = cpu::set_num_threads(o.threads);
  auto model = bench_model(o);
  allow_tf32(o.tf32);
  model->to(device);
  model->eval();
  Rng rng(42);
  // Trained-looking running statistics (fresh ones are 0 and 1), so the folded weights differ
  // from the raw ones as they do after training.
  for (const Buffer& b : model->params().buffers()) {
    if (b.value.dtype() != DType::f32) continue;
    const bool var = b.name.find("running_var") != std::string::npos;
    std::vector<float> v(size_t(b.value.numel()));
    for (float& e : v) e = var ? float(0.5 + std::abs(rng.normal())) : float(0.3 * rng.normal());
    b.value.copy_from(Tensor::from_data(b.value.shape(), v));
  }
  std::unique_ptr<InferenceNet> folded = model->inference_net();
  const Tensor x = random_batch(o, rng).to(device);
  autograd::NoGradGuard no_grad;
  // The two forms alternate, so a slower or busier stretch of the run affects both alike.
  double eval_s = 0.0, folded_s = 0.0;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model->forward(x);
    synchronize(device);
    if (i >= o.warmup) eval_s += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    folded->forward(x);
    synchronize(device);
    if (i >= o.warmup) folded_s += seconds_since(t0);
  }
  const std::vector<float> a = model->forward(x).to_vector(), b = folded->forward(x).to_vector();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), norm += double(a[i]) * a[i];
  const double images = double(o.batch) * o.steps;
  return {{"bench", "inference"},
          {"model", o.model},
          {"device", device_description(device)},
          {"tf32", o.tf32},
          {"batch", o.batch},
          {"size", o.size},
          {"threads", threads},
          {"steps", o.steps},
          {"eval_forward_images_per_s", images / eval_s},
          {"folded_images_per_s", images / folded_s},
          {"speedup", eval_s / folded_s},
          {"logits_rel_l2", std::sqrt(diff / std::max(norm, 1e-30))}};
}

nlohmann::json bench_loader(const TrainConfig& cfg, int batches) {
  OSPREY_CHECK(batches >= 1, "bench loader: batches must be >= 1");
  DataSplits data = load_data(cfg);
  Pipelines pipes = make_pipelines(cfg, {data.train.h, data.train.w, data.train.c});
  data::LoaderOptions lo = loader_options(cfg, pipes);
  // augment_device cuda: the loader picks the samples, the GPU makes the images (as in training).
  const bool gpu = cfg.augment_device == "cuda";
  if (gpu) resolve_device("cuda");  // a clear error without a GPU
  lo.images = !gpu;
  data::BatchLoader loader(data.train, lo);
  std::unique_ptr<data::GpuAugmenter> gpu_augment;
  if (gpu)
    gpu_augment = std::make_unique<data::GpuAugmenter>(
        loader.pipeline(), data::ImageShape{data.train.h, data.train.w, data.train.c},
        loader.channels());
  data::Batch batch;
  int epoch = 0;
  auto deliver = [&] {
    if (gpu_augment) gpu_augment->run(data.train, batch.indices.data(), batch.n, cfg.seed, epoch);
  };
  loader.start_epoch(0);
  OSPREY_CHECK(loader.next(batch), "bench loader: the training set has no batch");
  deliver();  // warm-up
  synchronize(gpu ? Device::cuda : Device::cpu);
  int64_t images = 0, done = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (; done < batches; ++epoch) {
    if (epoch > 0) loader.start_epoch(epoch);
    while (done < batches && loader.next(batch)) {
      deliver();
      images += batch.valid;
      ++done;
    }
  }
  synchronize(gpu ? Device::cuda : Device::cpu);
  double seconds = seconds_since(t0);
  const data::ImageShape out = loader.image_shape();
  return {{"bench", "loader"},
          {"dataset", cfg.dataset},
          {"batch", cfg.batch_size},
          {"output", {out.h, out.w, out.c}},
          {"augment_device", gpu ? device_description(Device::cuda) : "cpu"},
          {"augment_threads", cfg.augment_threads},
          {"batches", done},
          {"images_per_s", double(images) / seconds}};
}

}  // namespace osprey::tools
