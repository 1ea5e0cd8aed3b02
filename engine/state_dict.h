// PyTorch state_dict <-> ParamStore, converting names' layouts (see TorchLayout).
#pragma once
#include <string>
#include <vector>

#include "engine/param_store.h"
#include "engine/safetensors.h"

namespace osprey {

// Loads every parameter from a state_dict file. Shapes must match PyTorch's layout exactly;
// with strict, keys the model does not have are an error too. Messages name the file and key.
void load_torch_state_dict(const ParamStore& store, const SafeTensorsFile& file,
                           bool strict = true);
// Loads a pretrained state_dict (fine-tuning): every tensor must be present with the right
// shape, except those under one of `replaceable` name prefixes whose shape differs (the
// classifier of a model with another class count): they keep their initialisation. Keys the
// model lacks are ignored. Returns the names that were kept fresh.
std::vector<std::string> load_pretrained_state_dict(const ParamStore& store,
                                                    const SafeTensorsFile& file,
                                                    const std::vector<std::string>& replaceable);

// Fails naming the file, the tensor and the first bad flat index when the floating-point tensor
// `name` holds a NaN or infinity (integer tensors pass): such weights would load silently and
// make every prediction NaN. The loaders above check every tensor they load.
void require_finite(const SafeTensorsFile& file, const std::string& name);

// Adds every parameter to a writer under its torchvision name (prefix + name), PyTorch layout.
void add_torch_state_dict(const ParamStore& store, SafeTensorsWriter& writer,
                          const std::string& prefix = "");

}  // namespace osprey
