#include "tools/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "data/gpu_augment.h"
#include "data/loader.h"
#include "dist/agreement.h"
#include "dist/gradient_bucketer.h"
#include "dist/nccl_communicator.h"
#include "dist/pipeline.h"
#include "engine/checkpoint.h"
#include "engine/conv_bn_act.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parse.h"
#include "engine/safetensors.h"
#include "engine/schedule.h"
#include "engine/state_dict.h"
#include "kernels/cpu/threads.h"
#include "tools/datasets.h"
#include "tools/evaluate.h"
#include "tools/progress.h"

namespace osprey::tools {
namespace {

namespace fs = std::filesystem;

// Where the run is: the next epoch and step to run, and the best accuracy so far.
struct Position {
  int epoch = 0;
  int64_t step_in_epoch = 0;
  int64_t global_step = 0;
  double best_accuracy = -1.0;
};

Position read_position(const CheckpointMetadata& meta, const std::string& path) {
  Position pos;
  pos.epoch = int(checkpoint_int(meta, path, "epoch", 0, INT32_MAX));
  pos.step_in_epoch = checkpoint_int(meta, path, "step_in_epoch", 0, INT64_MAX);
  pos.global_step = checkpoint_int(meta, path, "global_step", 0, INT64_MAX);
  pos.best_accuracy = checkpoint_double(meta, path, "best_accuracy", -1.0, 1.0);
  return pos;
}

// The files of runs/<name>/.
struct RunFiles {
  fs::path dir;
  std::string config, metrics, last, best;
  explicit RunFiles(const TrainConfig& cfg)
      : dir(fs::path(cfg.runs_dir) / cfg.name),
        config((dir / "config.json").string()),
        metrics((dir / "metrics.jsonl").string()),
        last((dir / "last.safetensors").string()),
        best((dir / "best.safetensors").string()) {}
};

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  out.flush();
  OSPREY_CHECK(out.good(), "cannot append to '", path, "'");
}

// After a resume from a checkpoint of `completed` epochs, metrics.jsonl gets exactly one line per
// epoch 1..completed. Lines of later epochs (their checkpoint was never written, or an older
// checkpoint is resumed: the run repeats those epochs), duplicates (the last one wins) and lines
// cut by a kill are dropped; the line of epoch `completed` is the checkpoint's own copy, so a
// kill between the checkpoint and the append loses nothing.
void reconcile_metrics(const std::string& path, int completed, const std::string& checkpoint_line) {
  std::map<int64_t, std::string> by_epoch;
  auto take = [&](const std::string& line, const std::string& what) {
    check_json_depth(line, what);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("epoch") ||
        !j["epoch"].is_number_integer())
      return;
    const int64_t e = j["epoch"].get<int64_t>();
    if (e >= 1 && e <= completed) by_epoch[e] = line;
  };
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);)
    take(line, "'" + path + "' line " + std::to_string(++n));
  if (!checkpoint_line.empty()) take(checkpoint_line, "the checkpoint's metrics line");
  std::string out;
  for (const auto& kv : by_epoch) out += kv.second + "\n";
  write_file_atomic(path, out);
}

// Before anything is written: the run directory, stale temporary files of killed writes gone,
// the resolved config, and the metrics of a fresh run removed or of a resumed one reconciled.
void prepare_run_dir(const RunFiles& files, const TrainConfig& cfg, bool resumed, int completed,
                     const std::string& checkpoint_line) {
  fs::create_directories(files.dir);
  std::vector<std::string> stale = remove_stale_temp_files(files.dir.string());
  if (!stale.empty())
    std::printf("removed %zu stale temporary file%s of interrupted writes from %s\n", stale.size(),
                stale.size() == 1 ? "" : "s", files.dir.string().c_str());
  write_file_atomic(files.config, to_json(cfg).dump(2) + "\n");
  if (resumed)
    reconcile_metrics(files.metrics, completed, checkpoint_line);
  else
    fs::remove(files.metrics);
}

// metrics_line: the metrics.jsonl line of the last completed epoch, kept in the checkpoint so
// that the two cannot disagree (reconcile_metrics).
void save(const std::string& path, const Model& model, const Optimizer& opt, const TrainConfig& cfg,
          const ModelInput& input, const Position& pos, double accuracy,
          const std::string& metrics_line) {
  CheckpointMetadata meta = {{"epoch", std::to_string(pos.epoch)},
                             {"step_in_epoch", std::to_string(pos.step_in_epoch)},
                             {"global_step", std::to_string(pos.global_step)},
                             {"best_accuracy", std::to_string(pos.best_accuracy)},
                             {"test_accuracy", std::to_string(accuracy)},
                             {"config", to_json(cfg).dump()},
                             {"input", input.to_json().dump()}};
  if (!metrics_line.empty()) meta["metrics"] = metrics_line;
  save_checkpoint(path, model, &opt, meta);
}

// What every rank must agree on before the first collective that depends on it. Paths and
// thread counts may differ between nodes; every other config key may not.
std::vector<dist::Setting> settings_to_agree(const TrainConfig& cfg, const DataSplits& data,
                                             const ModelInput& input, Model& model,
                                             const data::BatchLoader& loader, const Position& pos,
                                             Device device) {
  static const std::set<std::string> per_rank = {
      "name", "data_dir", "runs_dir", "threads", "progress", "augment_threads", "init_from"};
  std::vector<dist::Setting> s;
  const nlohmann::json keys = to_json(cfg);
  for (const auto& kv : keys.items())
    if (!per_rank.count(kv.key()))
      s.push_back(
          {kv.key(), kv.value().is_string() ? kv.value().get<std::string>() : kv.value().dump()});
  // The bucket plan of these parameters and caps (no hooks: a one-rank communicator).
  std::unique_ptr<dist::Communicator> solo = dist::make_local_communicator();
  const dist::GradientBucketer buckets(model.params(), *solo,
                                       {cfg.first_bucket_bytes, cfg.bucket_bytes});
  std::string plan;
  for (const auto& b : buckets.buckets())
    plan += std::to_string(b.begin) + "-" + std::to_string(b.end) + ",";
  auto n = [](int64_t v) { return std::to_string(v); };
  s.insert(s.end(), {{"training_device", device_name(device)},
                     {"train_images", n(data.train.n)},
                     {"test_images", n(data.test.n)},
                     {"model_input", n(input.h) + "x" + n(input.w) + "x" + n(input.c) + ", " +
                                         n(input.num_classes) + " classes"},
                     {"steps_per_epoch", n(loader.batches_per_epoch())},
                     {"parameters", n(model.params().num_elements())},
                     {"parameter_layout", dist::layout_digest(model.params())},
                     {"bucket_plan", dist::digest(plan)},
                     {"start", "epoch " + n(pos.epoch) + " step " + n(pos.step_in_epoch) +
                                   " (global " + n(pos.global_step) + ")"}});
  return s;
}

OptimizerOptions optimizer_options(const TrainConfig& cfg) {
  OptimizerOptions oo;
  oo.kind = cfg.optimizer;
  oo.lr = cfg.lr;
  oo.weight_decay = cfg.weight_decay;
  oo.beta1 = cfg.beta1, oo.beta2 = cfg.beta2, oo.eps = cfg.eps;
  oo.momentum = cfg.optimizer == "sgd" ? cfg.momentum : 0.0f;
  oo.nesterov = cfg.nesterov;
  return oo;
}

ScheduleOptions schedule_options(const TrainConfig& cfg) {
  ScheduleOptions so;
  so.kind = cfg.schedule;
  so.step_size = cfg.step_size;
  so.gamma = cfg.gamma;
  so.min_lr = cfg.min_lr;
  so.pct_start = cfg.pct_start;
  so.cycle_momentum = cfg.cycle_momentum;
  so.base_momentum = cfg.base_momentum;
  so.max_momentum = cfg.max_momentum;
  return so;
}

}  // namespace

std::string resolve_checkpoint(const std::string& run_or_file, const std::string& runs_dir) {
  if (fs::is_regular_file(run_or_file)) return run_or_file;
  const fs::path in_runs = fs::path(runs_dir) / run_or_file;
  for (const fs::path& dir : {fs::path(run_or_file), in_runs}) {
    if (!fs::is_directory(dir)) continue;
    // last is written after best (an epoch that improves saves both), so it is the newest
    // unless its write failed (a full disk, a kill): then best, the same state or an older one,
    // is the one to resume; a resumed run repeats what is missing.
    std::string why;
    for (const fs::path& candidate : {dir / "last.safetensors", dir / "best.safetensors"}) {
      if (!fs::is_regular_file(candidate)) continue;
      try {
        read_checkpoint_metadata(candidate.string());
        return candidate.string();
      } catch (const Error& e) {
        if (why.empty()) why = e.what();
      }
    }
    OSPREY_CHECK(why.empty(), "no readable checkpoint in '", dir.string(), "': ", why);
  }
  fail("no checkpoint at '", run_or_file, "' (looked for the file itself, ", run_or_file,
       "/{last,best}.safetensors and ", in_runs.string(), "/{last,best}.safetensors)");
}

TrainConfig config_from_checkpoint(const std::string& path) {
  CheckpointMetadata meta = read_checkpoint_metadata(path);
  auto it = meta.find("config");
  OSPREY_CHECK(it != meta.end(), "checkpoint '", path, "' has no training config in its metadata");
  TrainConfig cfg;
  check_json_depth(it->second, "checkpoint '" + printable(path) + "': metadata 'config'");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  OSPREY_CHECK(!j.is_discarded(), "checkpoint '", path, "' has an unreadable config");
  apply_json(cfg, j, "checkpoint '" + path + "'");
  return cfg;
}

double run_train(const TrainConfig& cfg, const std::string& resume_from,
                 dist::Communicator* comm_or_null) {
  validate(cfg);
  std::unique_ptr<dist::Communicator> local;
  if (!comm_or_null) local = dist::make_local_communicator();
  dist::Communicator& comm = comm_or_null ? *comm_or_null : *local;
  const int rank = comm.rank(), world = comm.size();
  const bool lead = rank == 0;  // rank 0 alone prints, logs and writes files
  // Pipelines of pipeline_stages consecutive ranks; the batch is split over the replicas.
  dist::PipelineGroups groups = dist::split_pipeline(comm, cfg.pipeline_stages);
  const bool pipelined = cfg.pipeline_stages > 1;
  OSPREY_CHECK(cfg.batch_size % groups.replicas == 0, "config: batch_size ", cfg.batch_size,
               " must be a multiple of the ", groups.replicas,
               " data-parallel replicas (it is the global batch)");
  OSPREY_CHECK((cfg.batch_size / groups.replicas) % cfg.micro_batches == 0, "config: a batch of ",
               cfg.batch_size / groups.replicas, " per replica does not split into ",
               cfg.micro_batches, " micro-batches");
  int threads = cpu::set_num_threads(cfg.threads);
  DataSplits data = load_data(cfg);
  Pipelines pipes = make_pipelines(cfg, {data.train.h, data.train.w, data.train.c});
  ModelInput input = model_input(data, pipes);
  std::unique_ptr<Model> model = create_model_for(cfg, input);
  model->rng() = Rng(cfg.seed ^ 0xd20b0u);
  const Device device = resolve_device(cfg.device);
  allow_tf32(cfg.tf32);
  model->set_recompute_activations(cfg.recompute_activations);
  model->set_activation_dtype(cfg.precision == "bf16" ? DType::bf16 : DType::f32);
  model->to(device);  // before the optimizer, whose state lives beside the parameters
  auto optimizer = make_optimizer(model->params(), optimizer_options(cfg));

  Position pos;
  std::string last_metrics;  // the metrics line of the last completed epoch
  if (!resume_from.empty()) {
    CheckpointMetadata meta = load_checkpoint(resume_from, *model, optimizer.get());
    pos = read_position(meta, resume_from);
    if (meta.count("metrics")) last_metrics = meta.at("metrics");
  } else if (!cfg.init_from.empty()) {
    auto fresh = load_pretrained_state_dict(model->params(), SafeTensorsFile::read(cfg.init_from),
                                            model->classifier_prefixes());
    if (lead)
      std::printf("initialised from %s%s\n", cfg.init_from.c_str(),
                  fresh.empty() ? "" : " (new classifier for this class count)");
  }

  data::LoaderOptions lo = loader_options(cfg, pipes);
  lo.batch_size = cfg.batch_size / groups.replicas;
  lo.rank = groups.replica, lo.world = groups.replicas;
  // GPU augmentation: the loader only picks the samples, the GPU makes their images.
  OSPREY_CHECK(cfg.augment_device == "cpu" || device == Device::cuda,
               "augment_device cuda needs the training to run on cuda (device is ",
               device_name(device), ")");
  lo.images = cfg.augment_device == "cpu";
  data::BatchLoader loader(data.train, lo);
  OSPREY_CHECK(pos.step_in_epoch <= loader.batches_per_epoch(), "checkpoint '", resume_from,
               "': step_in_epoch ", pos.step_in_epoch, " is beyond the ",
               loader.batches_per_epoch(),
               " batches of an epoch of this config (were batch_size or limit_train changed?)");
  // Every rank checks, before any collective that depends on them, that the others run the
  // same steps on the same model: different settings would hang the job instead.
  dist::require_same_settings(comm,
                              settings_to_agree(cfg, data, input, *model, loader, pos, device));

  // GPU gradients travel over NCCL (one GPU per rank) unless the MPI communicator is asked for
  // (it stages them through host memory, so ranks may share a GPU).
  std::unique_ptr<dist::Communicator> nccl =
      dist::make_gradient_communicator(comm, device, cfg.communicator);
  dist::Communicator& grad_comm = nccl ? *nccl : comm;
  if (cfg.sync_batchnorm && world > 1)
    model->set_batchnorm_sync(std::make_shared<BatchNormSync>(
        BatchNormSync{[&comm](double* data, int64_t n) { comm.allreduce_sum(data, n); }}));
  // Every rank starts from rank 0's state (its own random initialisation or load).
  dist::broadcast_state(model->params(), grad_comm);
  // A pipeline's gradients are complete only after its last micro-batch: they are averaged
  // over the replica group once per step, not bucket by bucket during backward.
  std::unique_ptr<dist::Communicator> solo = dist::make_local_communicator();
  dist::GradientBucketer bucketer(model->params(), pipelined ? *solo : grad_comm,
                                  {cfg.first_bucket_bytes, cfg.bucket_bytes});

  std::unique_ptr<data::GpuAugmenter> gpu_augment;
  if (!lo.images)
    gpu_augment = std::make_unique<data::GpuAugmenter>(
        loader.pipeline(), data::ImageShape{data.train.h, data.train.w, data.train.c},
        loader.channels());
  std::unique_ptr<dist::PipelineSchedule> pipeline;
  dist::PipelinePlan plan;
  if (pipelined) {
    Tensor sample =
        Tensor::full({lo.batch_size / cfg.micro_batches, input.h, input.w, input.c}, 0.5f)
            .to(device);
    plan = dist::plan_pipeline(*model, sample, cfg.pipeline_stages, comm);
    dist::broadcast_state(model->params(), comm);  // the measurement touched BN statistics
    pipeline = std::make_unique<dist::PipelineSchedule>(*model, plan, *groups.pipe);
  }
  // Before evaluating or saving, every rank of a pipeline gets the other stages' state.
  auto sync_stages = [&] {
    if (pipelined) dist::sync_pipeline_state(*model, plan, *groups.pipe, optimizer.get());
  };
  LrSchedule schedule(schedule_options(cfg), cfg.lr, cfg.epochs, loader.batches_per_epoch());

  const RunFiles files(cfg);
  if (lead) prepare_run_dir(files, cfg, !resume_from.empty(), pos.epoch, last_metrics);

  if (lead) {
    std::printf(
        "osprey train: %s on %s (%d train / %d test images %dx%dx%d, model input %dx%dx%d, %d "
        "classes), %lld parameters, %d rank%s x %d threads, %s%s%s%s%s\n",
        model->name().c_str(), cfg.dataset.c_str(), data.train.n, data.test.n, data.train.h,
        data.train.w, data.train.c, input.h, input.w, input.c, data.num_classes,
        (long long)model->params().num_elements(), world, world > 1 ? "s" : "", threads,
        device_description(device).c_str(), cfg.precision == "bf16" ? ", bf16 activations" : "",
        gpu_augment ? ", augmentation on the GPU" : "",
        world > 1 ? (", " + std::string(grad_comm.name())).c_str() : "",
        resume_from.empty() ? "" : (", resuming " + resume_from).c_str());
    std::fflush(stdout);
  }

  double accuracy = 0.0;
  data::Batch batch;
  std::unique_ptr<BatchUploader> uploader;
  if (device == Device::cuda) uploader = std::make_unique<BatchUploader>();
  for (; pos.epoch < cfg.epochs; ++pos.epoch, pos.step_in_epoch = 0) {
    auto t0 = std::chrono::steady_clock::now();
    model->train();
    loader.start_epoch(pos.epoch);
    // A resumed epoch skips the batches already trained on: the order is a function of
    // (seed, epoch), so the remaining batches are the same ones.
    for (int64_t s = 0; s < pos.step_in_epoch; ++s) loader.next(batch);
    ProgressBar bar("epoch " + std::to_string(pos.epoch + 1) + "/" + std::to_string(cfg.epochs),
                    loader.batches_per_epoch(), cfg.progress && lead);
    double loss_sum = 0.0;
    int64_t seen = 0;
    // Counts step `step`'s loss into the epoch's mean and the progress bar.
    auto account = [&](float l, int64_t valid, int64_t step) {
      OSPREY_CHECK(std::isfinite(l), "training diverged: loss is ", l, " at epoch ", pos.epoch + 1,
                   " step ", step, " (try a lower lr)");
      loss_sum += double(l) * double(valid);
      seen += valid;
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "loss %.4f", seen ? loss_sum / double(seen) : 0.0);
      bar.update(step, suffix);
    };
    // On a GPU a step's loss is read only after the next step is queued, so the host prepares
    // and launches step s+1 while the device still runs step s (the divergence check lags by
    // one step).
    struct PendingLoss {
      Tensor loss;
      int64_t valid = 0, step = 0;
    };
    std::optional<PendingLoss> pending;
    auto settle = [&] {
      if (pending) account(pending->loss.to_vector()[0], pending->valid, pending->step);
      pending.reset();
    };
    while (loader.next(batch)) {
      optimizer->set_lr(schedule.lr(pos.epoch, pos.step_in_epoch));
      if (schedule.cycles_momentum())
        optimizer->set_momentum(schedule.momentum(pos.epoch, pos.step_in_epoch));
      const Shape x_shape = {batch.n, batch.h, batch.w, batch.c};
      Tensor x = gpu_augment ? gpu_augment->run(data.train, batch.indices.data(), batch.n, cfg.seed,
                                                pos.epoch)
                 : uploader  ? uploader->upload(batch.images.data(), x_shape)
                             : Tensor::from_data(x_shape, batch.images);
      optimizer->zero_grad();
      float l = 0.0f;
      bool has_loss = true;
      Tensor loss;
      if (pipelined) {
        l = float(pipeline->train_step(x, Tensor::from_labels(batch.labels), cfg.micro_batches,
                                       cfg.label_smoothing));
        has_loss = pipeline->last_stage();
        Tensor g = model->params().flat_grad();  // other stages' parts are zero
        groups.group->allreduce_average_async(g.ptr<float>(), g.numel());
        groups.group->wait_all();
      } else {
        loss = ops::softmax_cross_entropy(model->forward(x), Tensor::from_labels(batch.labels),
                                          cfg.label_smoothing);
        loss.backward();
        bucketer.finish();  // gradients are now averaged over the ranks
        if (device == Device::cpu) l = loss.data<float>()[0];
      }
      if (cfg.clip_grad_norm > 0) {
        // A pipeline rank holds its own stage's gradients (the rest are zero): the norm is
        // summed over the pipeline's stages.
        auto over_stages = [&](double squares) {
          groups.pipe->allreduce_sum(&squares, 1);
          return squares;
        };
        clip_grad_norm(model->params(), cfg.clip_grad_norm,
                       pipelined ? std::function<double(double)>(over_stages) : nullptr);
      }
      optimizer->step();
      ++pos.step_in_epoch;
      ++pos.global_step;
      if (loss.defined() && device == Device::cuda) {
        settle();
        pending = PendingLoss{loss, batch.valid, pos.step_in_epoch};
      } else if (has_loss) {
        account(l, batch.valid, pos.step_in_epoch);
      } else {
        bar.update(pos.step_in_epoch, "");
      }
      if (cfg.stop_after_steps > 0 && pos.global_step >= cfg.stop_after_steps) {
        settle();
        bar.finish();
        sync_stages();
        if (!lead) return accuracy;
        save(files.last, *model, *optimizer, cfg, input, pos, accuracy, last_metrics);
        std::printf(
            "stopped after %lld steps (epoch %d, step %lld); resume with "
            "`osprey train --resume %s`\n",
            (long long)pos.global_step, pos.epoch + 1, (long long)pos.step_in_epoch,
            files.dir.string().c_str());
        return accuracy;
      }
    }
    settle();
    bar.finish();
    double train_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sync_stages();
    Evaluation ev = evaluate(*model, data.test, pipes.eval, pipes.channels, input.num_classes,
                             cfg.eval_batch_size, rank, world);
    sum_across_ranks(ev, comm);
    double sums[2] = {loss_sum, double(seen)};
    comm.allreduce_sum(sums, 2);
    loss_sum = sums[0];
    seen = int64_t(sums[1]);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    accuracy = ev.accuracy();
    double train_loss = seen ? loss_sum / double(seen) : 0.0;
    double images_per_s = double(seen) / train_seconds;
    Position next = pos;
    ++next.epoch, next.step_in_epoch = 0;
    const bool improved = accuracy > pos.best_accuracy;
    if (improved) pos.best_accuracy = next.best_accuracy = accuracy;
    if (!lead) continue;
    std::printf(
        "epoch %2d/%d  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  %.0f images/s  "
        "%.1f s\n",
        pos.epoch + 1, cfg.epochs, train_loss, ev.loss, 100.0 * accuracy, images_per_s, seconds);
    std::fflush(stdout);
    last_metrics = nlohmann::json{{"epoch", pos.epoch + 1},     {"train_loss", train_loss},
                                  {"test_loss", ev.loss},       {"test_acc", accuracy},
                                  {"test_samples", ev.samples}, {"images_per_s", images_per_s},
                                  {"seconds", seconds},         {"lr", optimizer->lr()}}
                       .dump();
    // best, then last, then the metrics line: a write that fails (a full disk) or a kill
    // leaves every file resumable, and the line is also in the checkpoints (reconcile_metrics).
    if (improved) save(files.best, *model, *optimizer, cfg, input, next, accuracy, last_metrics);
    save(files.last, *model, *optimizer, cfg, input, next, accuracy, last_metrics);
    append_line(files.metrics, last_metrics);
  }
  return accuracy;
}

}  // namespace osprey::tools
