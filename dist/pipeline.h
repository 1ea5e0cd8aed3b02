// Pipeline parallelism (GPipe): a model's segments are split into contiguous stages, one per
// rank of a pipeline communicator; a global batch is cut into micro-batches that flow forward
// through the stages (activations sent point to point), then backward in reverse order (their
// gradients sent back). Parameter gradients accumulate over the micro-batches, so a step
// equals the unsplit model processing the same micro-batches one after the other.
#pragma once
#include <memory>
#include <vector>

#include "dist/communicator.h"
#include "engine/model.h"
#include "engine/optim.h"

namespace osprey::dist {

// Stage s runs segments [first[s], first[s + 1]); first has stages + 1 entries.
struct PipelinePlan {
  std::vector<int> first;
  int stages() const { return int(first.size()) - 1; }
};

// Contiguous stages minimising the most expensive stage, from a cost per segment.
PipelinePlan balance_stages(const std::vector<double>& segment_costs, int stages);
// Measured costs: the seconds of each segment's forward and backward on a sample batch.
std::vector<double> measure_segment_costs(Model& model, const Tensor& sample);

// ranks = stages x replicas: consecutive ranks form a pipeline (pipe, rank = stage); the same
// stage of every pipeline forms a data-parallel replica group.
struct PipelineGroups {
  int stages = 1, replicas = 1, stage = 0, replica = 0;
  std::unique_ptr<Communicator> pipe, group;
};
PipelineGroups split_pipeline(Communicator& world, int stages);
// Costs measured on world rank 0 with a sample micro-batch and shared, so every rank cuts the
// model the same way.
PipelinePlan plan_pipeline(Model& model, const Tensor& sample, int stages, Communicator& world);

// After optimizer steps, every rank of a pipeline holds the current values only of its own
// stage's parameters, buffers and optimizer state: this copies each stage's part from its rank
// to the others, so any rank can evaluate or checkpoint the whole model.
void sync_pipeline_state(Model& model, const PipelinePlan& plan, Communicator& pipe,
                         const Optimizer* optimizer);

class PipelineSchedule {
 public:
  // comm: the ranks of one pipeline, rank = stage.
  PipelineSchedule(Model& model, PipelinePlan plan, Communicator& comm);

  // One training step's forward and backward over the micro-batches of x (read on stage 0)
  // and labels (read on the last stage); each micro-batch's loss is weighted by its share of
  // the batch. Parameter gradients of this stage's segments accumulate (zero them before).
  // Returns the batch's mean loss on the last stage, 0 elsewhere; `correct` (when given) gets
  // the batch's top-1 hits on the last stage, 0 elsewhere.
  double train_step(const Tensor& x, const Tensor& labels, int micro_batches,
                    float label_smoothing = 0.0f, int64_t* correct = nullptr);

  int stage() const { return comm_.rank(); }
  bool first_stage() const { return stage() == 0; }
  bool last_stage() const { return stage() == plan_.stages() - 1; }

 private:
  Tensor run_segments(Tensor h);
  void send_tensor(const Tensor& t, int dest);
  Tensor recv_tensor(int source);

  Model& model_;
  PipelinePlan plan_;
  Communicator& comm_;
};

}  // namespace osprey::dist
