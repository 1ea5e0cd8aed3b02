#include "tools/train.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/idx.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "engine/state_dict.h"
#include "kernels/cpu/threads.h"
#include "models/registry.h"
#include "tools/evaluate.h"
#include "tools/progress.h"

namespace osprey::tools {
namespace {

data::Dataset load_dataset(const TrainConfig& cfg, bool train) {
  OSPREY_CHECK(cfg.dataset == "fashion-mnist" || cfg.dataset == "mnist", "unknown dataset '",
               cfg.dataset, "' (valid: fashion-mnist, mnist)");
  data::Dataset ds = data::load_idx_dataset(cfg.data_dir, train, cfg.dataset);
  int64_t limit = train ? cfg.limit_train : cfg.limit_test;
  if (limit > 0 && limit < ds.n) {
    ds.n = int(limit);
    ds.pixels.resize(size_t(limit * ds.image_size()));
    ds.labels.resize(size_t(limit));
  }
  return ds;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  out.flush();
  OSPREY_CHECK(out.good(), "cannot append to '", path, "'");
}

}  // namespace

double run_train(const TrainConfig& cfg) {
  validate(cfg);
  int threads = cpu::set_num_threads(cfg.threads);
  data::Dataset train_set = load_dataset(cfg, true);
  data::Dataset test_set = load_dataset(cfg, false);
  OSPREY_CHECK(int(cfg.mean.size()) == train_set.c, "config: mean/std have ", cfg.mean.size(),
               " values but the dataset has ", train_set.c, " channels");
  OSPREY_CHECK(test_set.h == train_set.h && test_set.w == train_set.w && test_set.c == train_set.c,
               "train and test images differ in size");

  models::ModelSpec spec;
  spec.name = cfg.model;
  spec.in_channels = train_set.c;
  spec.height = train_set.h;
  spec.width = train_set.w;
  spec.num_classes = std::max(train_set.num_classes, test_set.num_classes);
  spec.width_mult = cfg.width_mult;
  spec.dropout = cfg.dropout;
  spec.seed = cfg.seed;
  std::unique_ptr<Model> model = models::create_model(spec);
  model->rng() = Rng(cfg.seed ^ 0xd20b0u);

  OptimizerOptions oo;
  oo.kind = cfg.optimizer;
  oo.lr = cfg.lr;
  oo.weight_decay = cfg.weight_decay;
  oo.beta1 = cfg.beta1, oo.beta2 = cfg.beta2, oo.eps = cfg.eps;
  oo.momentum = cfg.optimizer == "sgd" ? cfg.momentum : 0.0f;
  oo.nesterov = cfg.nesterov;
  auto optimizer = make_optimizer(model->params(), oo);

  data::LoaderOptions lo;
  lo.batch_size = cfg.batch_size;
  lo.shuffle = true;
  lo.seed = cfg.seed;
  lo.normalize = {cfg.mean, cfg.std};
  data::BatchLoader loader(train_set, lo);
  data::Normalize norm{cfg.mean, cfg.std};

  ScheduleOptions so;
  so.kind = cfg.schedule;
  so.step_size = cfg.step_size;
  so.gamma = cfg.gamma;
  so.min_lr = cfg.min_lr;
  so.pct_start = cfg.pct_start;
  LrSchedule schedule(so, cfg.lr, cfg.epochs, loader.batches_per_epoch());

  namespace fs = std::filesystem;
  fs::path run_dir = fs::path(cfg.runs_dir) / cfg.name;
  fs::create_directories(run_dir);
  write_file_atomic((run_dir / "config.json").string(), to_json(cfg).dump(2) + "\n");
  std::string metrics_path = (run_dir / "metrics.jsonl").string();
  fs::remove(metrics_path);

  std::printf(
      "osprey train: %s on %s (%d train / %d test images %dx%dx%d, %d classes), "
      "%lld parameters, %d threads\n",
      model->name().c_str(), cfg.dataset.c_str(), train_set.n, test_set.n, train_set.h, train_set.w,
      train_set.c, spec.num_classes, (long long)model->params().num_elements(), threads);
  std::fflush(stdout);

  double accuracy = 0.0;
  data::Batch batch;
  for (int epoch = 0; epoch < cfg.epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    model->train();
    loader.start_epoch(epoch);
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs),
                    loader.batches_per_epoch(), cfg.progress);
    double loss_sum = 0.0;
    int64_t seen = 0, step = 0;
    while (loader.next(batch)) {
      optimizer->set_lr(schedule.lr(epoch, step));
      Tensor x = Tensor::from_data({batch.n, batch.h, batch.w, batch.c}, batch.images);
      optimizer->zero_grad();
      Tensor loss = ops::softmax_cross_entropy(model->forward(x), Tensor::from_labels(batch.labels),
                                               cfg.label_smoothing);
      loss.backward();
      if (cfg.clip_grad_norm > 0) clip_grad_norm(model->params(), cfg.clip_grad_norm);
      optimizer->step();
      float l = loss.data<float>()[0];
      OSPREY_CHECK(std::isfinite(l), "training diverged: loss is ", l, " at epoch ", epoch + 1,
                   " step ", step + 1, " (try a lower lr)");
      loss_sum += double(l) * batch.n;
      seen += batch.n;
      ++step;
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "loss %.4f", loss_sum / double(seen));
      bar.update(step, suffix);
    }
    bar.finish();
    double train_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Evaluation ev = evaluate(*model, test_set, norm, cfg.eval_batch_size);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    accuracy = ev.accuracy();
    double train_loss = seen ? loss_sum / double(seen) : 0.0;
    double images_per_s = double(seen) / train_seconds;
    std::printf(
        "epoch %2d/%d  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  %.0f images/s  "
        "%.1f s\n",
        epoch + 1, cfg.epochs, train_loss, ev.loss, 100.0 * accuracy, images_per_s, seconds);
    std::fflush(stdout);
    nlohmann::json m = {{"epoch", epoch + 1},         {"train_loss", train_loss},
                        {"test_loss", ev.loss},       {"test_acc", accuracy},
                        {"test_samples", ev.samples}, {"images_per_s", images_per_s},
                        {"seconds", seconds},         {"lr", optimizer->lr()}};
    append_line(metrics_path, m.dump());
    SafeTensorsWriter w;
    add_torch_state_dict(model->params(), w);
    w.set_metadata("model", model->name());
    w.set_metadata("epoch", std::to_string(epoch + 1));
    w.write((run_dir / "last.safetensors").string());
  }
  return accuracy;
}

}  // namespace osprey::tools
