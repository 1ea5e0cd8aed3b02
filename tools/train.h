// `osprey train`: the trainer loop, one user of the library like any training script.
#pragma once
#include <string>

#include "dist/communicator.h"
#include "tools/config.h"

namespace osprey::tools {

// Trains as configured, printing one line per epoch, and writes runs/<name>/: config.json,
// metrics.jsonl, last.safetensors (every epoch) and best.safetensors (best test accuracy).
// With resume_from (a checkpoint file), continues that run exactly where it stopped: the
// result is identical to a run that was never interrupted. Returns the last test accuracy.
// With a communicator of several ranks (mpirun), batch_size is the global batch: each rank
// trains on its shard, gradients are averaged in buckets, metrics are exact over all ranks, and
// rank 0 alone prints and writes files. Null means a single process.
double run_train(const TrainConfig& cfg, const std::string& resume_from = "",
                 dist::Communicator* comm = nullptr);

// A run directory, a checkpoint file, or a run name under runs_dir -> the checkpoint to resume.
std::string resolve_checkpoint(const std::string& run_or_file, const std::string& runs_dir);
// The config stored in a checkpoint's metadata.
TrainConfig config_from_checkpoint(const std::string& path);

}  // namespace osprey::tools
