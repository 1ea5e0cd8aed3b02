// Reading PyTorch .pth files (torch.save's zip format, PyTorch >= 1.6: <prefix>/data.pkl,
// <prefix>/data/<key> per storage, <prefix>/version) into the SafeTensorsFile that the
// safetensors reader makes, so every consumer of one takes the other. The pickle is run by the
// restricted reader of engine/torch_pickle.h; docs/pth.md says what is read and refused.
#pragma once
#include <string>

#include "engine/safetensors.h"

namespace osprey {

// The state_dict in a .pth: the top-level dict, or its "state_dict" / "model" dict of tensors
// when it has one (a training checkpoint); names lose a leading "module." (DDP) and
// "_orig_mod." (torch.compile). Views are copied out contiguous; dtypes keep their safetensors
// names (F32, F16, BF16, F64, I64, I32, U8).
SafeTensorsFile read_pth(const std::string& path);

// A .pth (a zip: it starts with "PK\3\4") or a safetensors file, told apart by content. Every
// reader of a user's tensor file (init_from, checkpoints) goes through this.
SafeTensorsFile read_tensor_file(const std::string& path);

}  // namespace osprey
