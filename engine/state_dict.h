// PyTorch state_dict <-> ParamStore, converting names' layouts (see TorchLayout).
#pragma once
#include <string>

#include "engine/param_store.h"
#include "engine/safetensors.h"

namespace osprey {

// Loads every parameter from a state_dict file. Shapes must match PyTorch's layout exactly;
// with strict, keys the model does not have are an error too. Messages name the file and key.
void load_torch_state_dict(const ParamStore& store, const SafeTensorsFile& file,
                           bool strict = true);
// Adds every parameter to a writer under its torchvision name (prefix + name), PyTorch layout.
void add_torch_state_dict(const ParamStore& store, SafeTensorsWriter& writer,
                          const std::string& prefix = "");

}  // namespace osprey
