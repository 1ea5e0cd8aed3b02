// Accuracy and mean loss of a model over a whole dataset (in order, eval mode, no autograd).
#pragma once
#include <cstdint>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/model.h"

namespace osprey::tools {

struct Evaluation {
  int64_t samples = 0;
  int64_t correct = 0;
  double loss = 0.0;  // mean over samples
  double accuracy() const { return samples ? double(correct) / double(samples) : 0.0; }
};

Evaluation evaluate(Model& model, const data::Dataset& ds, const data::Normalize& norm,
                    int batch_size);

}  // namespace osprey::tools
