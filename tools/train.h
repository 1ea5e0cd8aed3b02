// `osprey train`: the trainer loop, one user of the library like any training script.
#pragma once
#include "tools/config.h"

namespace osprey::tools {

// Trains as configured, prints one line per epoch, writes runs/<name>/{config.json,
// metrics.jsonl,last.safetensors}. Returns the final test accuracy.
double run_train(const TrainConfig& cfg);

}  // namespace osprey::tools
