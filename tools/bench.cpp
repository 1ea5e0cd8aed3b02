#include "tools/bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "dist/gradient_bucketer.h"
#include "dist/nccl_communicator.h"
#include "dist/pipeline.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/profiler.h"
#include "kernels/cpu/threads.h"
#include "models/registry.h"
#include "tools/datasets.h"

namespace osprey::tools {

nlohmann::json bench_train(const BenchTrainOptions& o, dist::Communicator& comm) {
  const Device device = resolve_device(o.device);
  OSPREY_CHECK(o.dtype == "f32", "bench: dtype '", o.dtype, "' is not supported (valid: f32)");
  OSPREY_CHECK(device == Device::cpu || o.pipeline_stages == 1,
               "bench: pipeline stages run on the cpu only");
  // Several GPU ranks average their gradients over NCCL (MPI staging when built without it).
  std::unique_ptr<dist::Communicator> nccl = dist::make_gradient_communicator(comm, device, "auto");
  dist::Communicator& grad_comm = nccl ? *nccl : comm;
  OSPREY_CHECK(o.batch >= 1 && o.steps >= 1 && o.warmup >= 0,
               "bench: batch and steps must be >= 1");
  int threads = cpu::set_num_threads(o.threads);
  models::ModelSpec spec;
  spec.name = o.model;
  spec.in_channels = o.in_channels;
  spec.height = spec.width = o.size;
  spec.num_classes = o.classes;
  spec.width_mult = o.width_mult;
  auto model = models::create_model(spec);
  allow_tf32(o.tf32);
  model->to(device);
  dist::broadcast_state(model->params(), grad_comm);
  OptimizerOptions oo;
  oo.kind = o.optimizer;
  auto optimizer = make_optimizer(model->params(), oo);
  const int stages = o.pipeline_stages;
  dist::PipelineGroups groups = dist::split_pipeline(comm, stages);
  const int replicas = groups.replicas;
  std::unique_ptr<dist::PipelineSchedule> schedule;
  dist::GradientBucketer bucketer(model->params(), stages > 1 ? *groups.group : grad_comm);

  Rng rng(42 + uint64_t(comm.rank() / stages));  // each data-parallel replica its own shard
  Tensor x = Tensor::empty({o.batch, o.size, o.size, o.in_channels});
  float* px = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] = float(rng.normal());
  std::vector<int64_t> labels(size_t(o.batch));
  for (auto& l : labels) l = int64_t(rng.next_u64() % uint64_t(o.classes));
  Tensor y = Tensor::from_labels(labels);
  x = x.to(device);
  y = y.to(device);

  if (stages > 1)
    schedule = std::make_unique<dist::PipelineSchedule>(
        *model, dist::plan_pipeline(*model, x, stages, comm), *groups.pipe);
  auto step = [&] {
    optimizer->zero_grad();
    if (schedule) {
      schedule->train_step(x, y, o.micro_batches);
      Tensor g = model->params().flat_grad();  // whole buffer: other stages' parts are zero
      groups.group->allreduce_average_async(g.data<float>(), g.numel());
      groups.group->wait_all();
    } else {
      Tensor loss = ops::softmax_cross_entropy(model->forward(x), y);
      loss.backward();
      bucketer.finish();
    }
    optimizer->step();
  };
  for (int i = 0; i < o.warmup; ++i) step();
  synchronize(device);
  reset_peak_device_memory(device);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.steps; ++i) step();
  synchronize(device);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (comm.size() > 1) {  // the job is as fast as its slowest rank
    std::vector<double> all(size_t(comm.size()), 0.0);
    all[size_t(comm.rank())] = seconds;
    comm.allreduce_sum(all.data(), int64_t(all.size()));
    seconds = *std::max_element(all.begin(), all.end());
  }
  nlohmann::json profile = nlohmann::json::array();
  if (o.profile) {
    // Extra steps with the device synchronised around every op: each op's own time.
    profiler::reset();
    profiler::enable(true, device);
    for (int i = 0; i < o.steps; ++i) step();
    profiler::enable(false);
    double total = 0.0;
    for (const auto& e : profiler::report()) total += e.ms;
    for (const auto& e : profiler::report())
      profile.push_back({{"op", e.name},
                         {"calls_per_step", double(e.calls) / o.steps},
                         {"ms_per_step", e.ms / o.steps},
                         {"share", total > 0 ? e.ms / total : 0.0}});
  }
  nlohmann::json result = {
      {"bench", "train"},
      {"model", o.model},
      {"device", device_description(device)},
      {"dtype", o.dtype},
      {"tf32", o.tf32},
      {"batch", o.batch},
      {"size", o.size},
      {"threads", threads},
      {"ranks", comm.size()},
      {"communicator", grad_comm.name()},
      {"pipeline_stages", stages},
      {"micro_batches", o.micro_batches},
      {"steps", o.steps},
      {"ms_per_step", 1e3 * seconds / o.steps},
      {"images_per_s", double(o.batch) * replicas * o.steps / seconds},
      {"peak_device_memory_mb", double(peak_device_memory(device)) / (1 << 20)}};
  if (o.profile) result["profile"] = profile;
  return result;
}

nlohmann::json bench_loader(const TrainConfig& cfg, int batches) {
  OSPREY_CHECK(batches >= 1, "bench loader: batches must be >= 1");
  DataSplits data = load_data(cfg);
  Pipelines pipes = make_pipelines(cfg, {data.train.h, data.train.w, data.train.c});
  data::BatchLoader loader(data.train, loader_options(cfg, pipes));
  data::Batch batch;
  loader.start_epoch(0);
  OSPREY_CHECK(loader.next(batch), "bench loader: the training set has no batch");
  int64_t images = 0, done = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; done < batches; ++epoch) {
    if (epoch > 0) loader.start_epoch(epoch);
    while (done < batches && loader.next(batch)) {
      images += batch.valid;
      ++done;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {{"bench", "loader"},
          {"dataset", cfg.dataset},
          {"batch", cfg.batch_size},
          {"output", {batch.h, batch.w, batch.c}},
          {"augment_threads", cfg.augment_threads},
          {"batches", done},
          {"images_per_s", double(images) / seconds}};
}

}  // namespace osprey::tools
