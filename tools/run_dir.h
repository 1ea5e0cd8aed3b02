// A training run's folder, runs/<name>/: choosing a name that overwrites nothing, preparing the
// folder (config.json with provenance, metrics reconciled with the checkpoint resumed) and
// finding the checkpoint to resume.
#pragma once
#include <filesystem>
#include <string>

#include "tools/config.h"

namespace osprey::tools {

// The files of runs_dir/<name>/.
struct RunFiles {
  std::filesystem::path dir;
  std::string config, metrics, steps, last, best, curves;
  RunFiles() = default;
  RunFiles(const std::string& runs_dir, const std::string& name);
};

// Before any work: the run's name, and a refusal when it would replace a run. An empty
// cfg.name becomes "<model>_<dataset>_<N>" with N one past the highest used. A named run that
// already exists is refused unless overwrite (its files are then removed when it is opened) or
// resuming (which continues it).
struct RunClaim {
  bool resuming = false, overwrite = false, auto_named = false;
};
RunClaim claim_run_name(TrainConfig& cfg, bool resuming, bool overwrite);

// What config.json records besides the config: this binary (version, commit, build options),
// the host, command line, start time and world size.
struct Provenance {
  std::string command_line, start_time, resumed_from;
  int world_size = 1;
};

// Creates the folder (a default name taken meanwhile by another run moves on to the next N),
// removes temporary files of killed writes (and, with overwrite, the old run's files), writes
// config.json, and removes the metrics of a fresh run or reconciles those of a resumed one
// with the checkpoint: one metrics.jsonl line per epoch in 1..completed_epochs, steps.jsonl
// lines up to completed_steps. checkpoint_line: the metrics line the checkpoint holds.
RunFiles open_run_dir(TrainConfig& cfg, const RunClaim& claim, const Provenance& prov,
                      int completed_epochs, int64_t completed_steps,
                      const std::string& checkpoint_line);

// Appends one line and flushes it, failing when the write fails (a full disk).
void append_line(const std::string& path, const std::string& line);

// The UTC time now, as "2026-12-01T15:04:05Z".
std::string utc_now();

// A run directory, a checkpoint file, or a run name under runs_dir -> the checkpoint to resume:
// a run's last.safetensors, or its best.safetensors when last is missing or unreadable.
std::string resolve_checkpoint(const std::string& run_or_file, const std::string& runs_dir);
// The config stored in a checkpoint's metadata.
TrainConfig config_from_checkpoint(const std::string& path);

}  // namespace osprey::tools
