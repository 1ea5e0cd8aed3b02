#include "tools/train_settings.h"

#include <set>

#include "dist/gradient_bucketer.h"

namespace osprey::tools {

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

std::vector<dist::Setting> settings_to_agree(const TrainConfig& cfg, const DataSplits& data,
                                             const ModelInput& input, Model& model,
                                             const data::BatchLoader& loader,
                                             const std::string& start, Device device) {
  static const std::set<std::string> per_rank = {
      "name", "data_dir",  "runs_dir",        "threads",        "progress", "progress_interval_s",
      "plot", "init_from", "augment_threads", "log_every_steps"};
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
                     {"start", start}});
  return s;
}

}  // namespace osprey::tools
