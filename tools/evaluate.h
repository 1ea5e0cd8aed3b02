// Accuracy and mean loss of a model over a whole dataset (in order, eval mode, no autograd).
#pragma once
#include <cstdint>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "engine/model.h"

namespace osprey::tools {

struct Evaluation {
  int64_t samples = 0;
  int64_t correct = 0;
  double loss = 0.0;  // mean over samples
  int num_classes = 0;
  std::vector<int64_t> confusion;  // [true class][predicted class], num_classes^2
  double accuracy() const { return samples ? double(correct) / double(samples) : 0.0; }
  // Accuracy over the samples of one true class (0 when it has none).
  double class_accuracy(int k) const;
  int64_t class_count(int k) const;
};

// The model's inference form runs (Model::inference_net: folded BatchNorm where the model has
// one). eval: a deterministic pipeline (data::AugmentPipeline::eval_pipeline), channels: what the
// model sees (grayscale replicated to 3 when the dataset has 1).
// With several ranks, each evaluates the samples i with i % world == rank (every sample exactly
// once, no padding) and sum_across_ranks() makes the totals global.
Evaluation evaluate(Model& model, const data::Dataset& ds, const data::AugmentPipeline& eval,
                    int channels, int num_classes, int batch_size, int rank = 0, int world = 1);
void sum_across_ranks(Evaluation& ev, dist::Communicator& comm);

}  // namespace osprey::tools
