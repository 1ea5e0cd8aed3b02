// What a TrainConfig means to the engine and to the other ranks: the optimizer and schedule
// options it selects, and the settings every rank must agree on before training together.
#pragma once
#include <vector>

#include "data/loader.h"
#include "dist/agreement.h"
#include "engine/device.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "tools/config.h"
#include "tools/datasets.h"

namespace osprey::tools {

OptimizerOptions optimizer_options(const TrainConfig& cfg);
ScheduleOptions schedule_options(const TrainConfig& cfg);

// Paths, thread counts and output settings may differ between nodes; every other config key
// may not, nor the data, model, bucket plan or start position derived from them.
std::vector<dist::Setting> settings_to_agree(const TrainConfig& cfg, const DataSplits& data,
                                             const ModelInput& input, Model& model,
                                             const data::BatchLoader& loader,
                                             const std::string& start, Device device);

}  // namespace osprey::tools
