#include "tools/train_position.h"

#include <cstdio>

namespace osprey::tools {
namespace {

// A double as text that reads back bit for bit.
std::string exact(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

}  // namespace

Position read_position(const CheckpointMetadata& meta, const std::string& path) {
  Position pos;
  pos.epoch = int(checkpoint_int(meta, path, "epoch", 0, INT32_MAX));
  pos.step_in_epoch = checkpoint_int(meta, path, "step_in_epoch", 0, INT64_MAX);
  pos.global_step = checkpoint_int(meta, path, "global_step", 0, INT64_MAX);
  pos.best_accuracy = checkpoint_double(meta, path, "best_accuracy", -1.0, 1.0);
  auto has = [&](const char* key) { return meta.count(key) > 0; };
  if (has("best_epoch"))
    pos.best_epoch = int(checkpoint_int(meta, path, "best_epoch", 0, INT32_MAX));
  if (has("elapsed_s")) pos.elapsed_s = checkpoint_double(meta, path, "elapsed_s", 0.0, 1e12);
  if (has("epoch_loss_sum"))
    pos.loss_sum = checkpoint_double(meta, path, "epoch_loss_sum", -1e300, 1e300);
  if (has("epoch_seen")) pos.seen = checkpoint_int(meta, path, "epoch_seen", 0, INT64_MAX);
  if (has("epoch_correct")) pos.correct = checkpoint_int(meta, path, "epoch_correct", 0, INT64_MAX);
  return pos;
}

void save_training_checkpoint(const std::string& path, const Model& model, const Optimizer& opt,
                              const TrainConfig& cfg, const ModelInput& input, const Position& pos,
                              double accuracy, const std::string& metrics_line) {
  CheckpointMetadata meta = {{"epoch", std::to_string(pos.epoch)},
                             {"step_in_epoch", std::to_string(pos.step_in_epoch)},
                             {"global_step", std::to_string(pos.global_step)},
                             {"best_accuracy", exact(pos.best_accuracy)},
                             {"best_epoch", std::to_string(pos.best_epoch)},
                             {"elapsed_s", exact(pos.elapsed_s)},
                             {"epoch_loss_sum", exact(pos.loss_sum)},
                             {"epoch_seen", std::to_string(pos.seen)},
                             {"epoch_correct", std::to_string(pos.correct)},
                             {"test_accuracy", exact(accuracy)},
                             {"config", to_json(cfg).dump()},
                             {"input", input.to_json().dump()}};
  if (!metrics_line.empty()) meta["metrics"] = metrics_line;
  save_checkpoint(path, model, &opt, meta);
}

}  // namespace osprey::tools
