// `osprey train`: the trainer loop, one user of the library like any training script.
#pragma once
#include <string>

#include "dist/communicator.h"
#include "tools/config.h"

namespace osprey::tools {

// Trains as configured, printing one line per epoch, and writes runs/<name>/: config.json,
// metrics.jsonl, last.safetensors (every epoch) and best.safetensors (best test accuracy).
// An epoch writes best (when it improved), then last, then its metrics line, which both
// checkpoints also hold: a kill or a failed write at any point leaves a resumable run. At start
// the temporary files of killed writes are removed from the run directory.
// With resume_from (a checkpoint file), continues that run exactly where it stopped: the
// result is identical to a run that was never interrupted, and metrics.jsonl is made to hold
// exactly one line per epoch the checkpoint covers. Returns the last test accuracy.
// With a communicator of several ranks (mpirun), batch_size is the global batch: each rank
// trains on its shard, gradients are averaged in buckets, metrics are exact over all ranks, and
// rank 0 alone prints and writes files. Null means a single process. Before the first
// collective that depends on them, the ranks check that they agree on every setting that must
// be equal (dist/agreement.h) and all fail naming the first difference otherwise.
double run_train(const TrainConfig& cfg, const std::string& resume_from = "",
                 dist::Communicator* comm = nullptr);

// A run directory, a checkpoint file, or a run name under runs_dir -> the checkpoint to resume:
// a run's last.safetensors, or its best.safetensors when last is missing or unreadable.
std::string resolve_checkpoint(const std::string& run_or_file, const std::string& runs_dir);
// The config stored in a checkpoint's metadata.
TrainConfig config_from_checkpoint(const std::string& path);

}  // namespace osprey::tools
