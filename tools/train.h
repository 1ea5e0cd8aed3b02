// `osprey train`: the trainer loop, one user of the library like any training script.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "tools/config.h"
#include "tools/datasets.h"
#include "tools/run_dir.h"

namespace osprey::tools {

// After each training step, on every rank that computes the loss (a pipeline's last stage);
// on a GPU one step late, when the step's loss is read.
struct StepEvent {
  int epoch = 0;  // 1-based
  int64_t step_in_epoch = 0, steps_per_epoch = 0;
  int64_t global_step = 0;
  double loss = 0.0;  // this rank's mean over its batch
};

// After each epoch's evaluation (and, on rank 0, its checkpoints and metrics line), on every
// rank, with the values over all ranks.
struct EpochEvent {
  int epoch = 0, epochs = 0;                 // the epoch just finished, 1-based
  double train_loss = 0.0, train_acc = 0.0;  // percent
  double test_loss = 0.0, test_acc = 0.0;    // percent
  double images_per_s = 0.0, seconds = 0.0;
  bool best = false;  // the best test accuracy so far
};

struct TrainOptions {
  std::string resume_from;   // a checkpoint file (resolve_checkpoint) to continue
  bool overwrite = false;    // replace an existing run of the same name instead of refusing
  std::string command_line;  // recorded in config.json
  // SIGINT, SIGTERM and SIGUSR1 stop the run cleanly (tools/stop_signal.h) while it trains.
  bool handle_signals = true;
  // A program's own data (config dataset "custom"): train and test images of one shape,
  // labels in [0, num_classes). Configured datasets are read from data_dir otherwise.
  std::shared_ptr<const DataSplits> data;
  std::function<void(const StepEvent&)> on_step;
  std::function<void(const EpochEvent&)> on_epoch;

  static TrainOptions resuming(std::string checkpoint) {
    TrainOptions o;
    o.resume_from = std::move(checkpoint);
    return o;
  }
};

struct TrainOutcome {
  double accuracy = 0.0;  // last test accuracy, a fraction
  double best_accuracy = -1.0;
  int best_epoch = 0;
  std::string run_dir;
  int stopped_by_signal = 0;  // SIGINT, SIGTERM, SIGUSR1: a resumable checkpoint was written
};

// Trains as configured, printing one line per epoch and a summary, and writes
// runs_dir/<name>/ (tools/run_dir.h; a new run never replaces another): config.json,
// metrics.jsonl, last.safetensors (every epoch), best.safetensors (best test accuracy),
// steps.jsonl (log_every_steps) and curves.png (plot). An epoch writes best (when it improved),
// then last, then its metrics line, which both checkpoints also hold: a kill or a failed write
// at any point leaves a resumable run.
// With options.resume_from (a checkpoint file), continues that run exactly where it stopped:
// the result is identical to a run that was never interrupted; a run that already finished its
// epochs is reported and left as it is. A stop signal (options.handle_signals) ends the run
// after the current step with a resumable last.safetensors, loader position included.
// With a communicator of several ranks (mpirun), batch_size is the global batch: each rank
// trains on its shard, gradients are averaged in buckets, metrics are exact over all ranks, and
// rank 0 alone prints and writes files. Null means a single process. Before the first
// collective that depends on them, the ranks check that they agree on every setting that must
// be equal (dist/agreement.h) and all fail naming the first difference otherwise.
TrainOutcome run_train(const TrainConfig& cfg, const TrainOptions& options = {},
                       dist::Communicator* comm = nullptr);

}  // namespace osprey::tools
