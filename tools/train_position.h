// A training run's position as its checkpoints record it: where it is, its best accuracy so
// far and the epoch's partial sums, so that a resumed run continues exactly.
#pragma once
#include <cstdint>
#include <string>

#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "tools/config.h"
#include "tools/datasets.h"

namespace osprey::tools {

// Where the run is: the next epoch and step to run, the best accuracy so far, and the sums of
// the epoch's training steps so far (over all ranks), so that a run resumed mid-epoch reports
// the epoch exactly as an uninterrupted one does.
struct Position {
  int epoch = 0;
  int64_t step_in_epoch = 0;
  int64_t global_step = 0;
  double best_accuracy = -1.0;
  int best_epoch = 0;
  double elapsed_s = 0.0;  // training wall time of the run so far, all its processes
  double loss_sum = 0.0;
  int64_t seen = 0, correct = 0;
};

// Reads a checkpoint's position. Keys added after the first checkpoints were written are
// optional, so those still resume; every value is checked strictly (engine/checkpoint.h).
Position read_position(const CheckpointMetadata& meta, const std::string& path);

// Writes model, optimizer, config, input and position to path (atomically). metrics_line: the
// metrics.jsonl line of the last completed epoch, kept in the checkpoint so that the two cannot
// disagree (open_run_dir reconciles them).
void save_training_checkpoint(const std::string& path, const Model& model, const Optimizer& opt,
                              const TrainConfig& cfg, const ModelInput& input, const Position& pos,
                              double accuracy, const std::string& metrics_line);

}  // namespace osprey::tools
