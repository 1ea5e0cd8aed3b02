// Training checkpoints: one safetensors file holding the model's state_dict (torchvision names,
// PyTorch layouts, loadable by PyTorch as is), the optimizer state per parameter
// ("optimizer.<slot>.<param name>", PyTorch layout) and string metadata (epoch, step, best
// accuracy, config, ...). Written atomically; a damaged file is refused, never half-loaded.
#pragma once
#include <map>
#include <string>

#include "engine/model.h"
#include "engine/optim.h"

namespace osprey {

using CheckpointMetadata = std::map<std::string, std::string>;

// optimizer may be null (a weights-only file).
void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                     const CheckpointMetadata& metadata);

// Reads the file, checks every tensor the model (and optimizer, when given) needs, and only
// then overwrites parameters, buffers, optimizer state and the model's dropout stream.
// Returns the metadata.
CheckpointMetadata load_checkpoint(const std::string& path, Model& model, Optimizer* optimizer);

// The metadata alone (to rebuild the model from the config before loading).
CheckpointMetadata read_checkpoint_metadata(const std::string& path);

}  // namespace osprey
