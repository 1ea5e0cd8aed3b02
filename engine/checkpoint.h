// Training checkpoints: one safetensors file holding the model's state_dict (torchvision names,
// PyTorch layouts, loadable by PyTorch as is), the optimizer state per parameter
// ("optimizer.<slot>.<param name>", PyTorch layout) and string metadata (epoch, step, best
// accuracy, config, ...). Written atomically; a damaged file is refused, never half-loaded.
#pragma once
#include <map>
#include <string>
#include <vector>

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

// A numeric metadata value of checkpoint `path`, read strictly (engine/parse.h): the whole text
// is the number, within [lo, hi]. Missing or anything else ("x", "-1" below lo, "1e99" as an
// integer) fails naming the file and the key.
int64_t checkpoint_int(const CheckpointMetadata& meta, const std::string& path,
                       const std::string& key, int64_t lo, int64_t hi);
double checkpoint_double(const CheckpointMetadata& meta, const std::string& path,
                         const std::string& key, double lo, double hi);

// Removes from dir the temporary files that an atomic write (write_file_atomic: ".NAME.tmp.PID")
// leaves behind when its process is killed mid-write: those whose process is no longer alive on
// this host, those of this process (it writes nothing while this runs), and any older than an
// hour (no write takes that long; this also covers processes of another host sharing the
// directory). Returns the paths removed.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

}  // namespace osprey
