// The trainer behind run_train (tools/train.h), shared by the two files that define it; not
// part of the library's interface.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "data/gpu_augment.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "dist/pipeline.h"
#include "engine/device.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "engine/tensor.h"
#include "tools/config.h"
#include "tools/datasets.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/stop_signal.h"
#include "tools/train.h"
#include "tools/train_position.h"

namespace osprey::tools {

// One training run: the setup in the constructor (trainer_setup.cpp), then run() (train.cpp).
class Trainer {
 public:
  using Clock = std::chrono::steady_clock;

  Trainer(const TrainConfig& cfg, const TrainOptions& options, const RunClaim& claim,
          dist::Communicator& comm);
  TrainOutcome run();

 private:
  // The constructor's steps, in this order: each uses what the ones before it set up.
  void check_batch_split() const;
  void build_model();
  void restore_or_initialise();
  void make_loader();
  void agree_with_other_ranks();
  void connect_gradients();
  void plan_pipeline_stages();

  void print_header() const;
  void step(const data::Batch& batch);
  void account(float loss, int64_t valid, int64_t correct, int64_t step);
  void settle();
  // The first signal any rank received (all ranks call it at the same step).
  int agreed_signal();
  TrainOutcome stop(int signal);
  void end_epoch(double train_seconds, Clock::time_point epoch_start);
  void sync_stages();
  void draw_curves() const;
  TrainOutcome outcome(int signal) const;

  TrainConfig cfg_;
  TrainOptions options_;
  dist::Communicator& comm_;
  const bool lead_;  // rank 0 alone prints, logs and writes files
  dist::PipelineGroups groups_;
  const bool pipelined_;
  int threads_ = 0;
  std::shared_ptr<const DataSplits> data_;  // the configured dataset, or the program's
  Pipelines pipes_;
  ModelInput input_;
  std::unique_ptr<Model> model_;
  Device device_ = Device::cpu;
  std::unique_ptr<Optimizer> optimizer_;
  Position pos_;
  std::string last_metrics_;  // the metrics line of the last completed epoch
  data::LoaderOptions loader_options_;
  std::unique_ptr<data::BatchLoader> loader_;
  std::unique_ptr<dist::Communicator> nccl_, solo_;
  dist::Communicator* grad_comm_ = nullptr;
  std::unique_ptr<dist::GradientBucketer> bucketer_;
  std::unique_ptr<data::GpuAugmenter> gpu_augment_;
  dist::PipelinePlan plan_;
  std::unique_ptr<dist::PipelineSchedule> pipeline_;
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<BatchUploader> uploader_;
  std::optional<StopSignals> signals_;
  RunFiles files_;
  Clock::time_point start_ = Clock::now();
  double elapsed_at_start_ = 0.0;
  double accuracy_ = 0.0;
  int64_t images_ = 0;  // trained by all ranks in this process, for images/s
  std::unique_ptr<ProgressBar> bar_;
  // On a GPU a step's loss is read only after the next step is queued, so the host prepares
  // and launches step s+1 while the device still runs step s (the divergence check lags by
  // one step).
  struct PendingLoss {
    Tensor loss, logits, labels;
    int64_t valid = 0, step = 0;
  };
  std::optional<PendingLoss> pending_;
};

}  // namespace osprey::tools
