#include "engine/checkpoint.h"

#include <vector>

#include "engine/safetensors.h"
#include "engine/state_dict.h"

namespace osprey {
namespace {

const std::string kOptimizerPrefix = "optimizer.";

std::string metadata_value(const SafeTensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  OSPREY_CHECK(it != f.metadata().end(), "checkpoint '", f.path(), "' has no '", key,
               "' in its metadata: not an osprey checkpoint, or damaged");
  return it->second;
}

}  // namespace

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                     const CheckpointMetadata& metadata) {
  SafeTensorsWriter w;
  add_torch_state_dict(model.params(), w);
  std::vector<float> buf;
  if (optimizer) {
    for (const auto& [slot, flat] : optimizer->state()) {
      Tensor host = flat.to(Device::cpu);
      for (const Parameter& p : model.params().params()) {
        buf.resize(size_t(p.value.numel()));
        p.to_torch(host.data<float>() + p.offset, buf.data());
        w.add_f32(kOptimizerPrefix + slot + "." + p.name, p.torch_shape(), buf.data());
      }
    }
    w.set_metadata("optimizer", optimizer->options().kind);
    w.set_metadata("optimizer_steps", std::to_string(optimizer->steps()));
  }
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  w.set_metadata("model", model.name());
  w.set_metadata("rng_counter", std::to_string(model.rng().counter()));
  w.set_metadata("format", "osprey-checkpoint-1");
  w.write(path);
}

CheckpointMetadata load_checkpoint(const std::string& path, Model& model, Optimizer* optimizer) {
  SafeTensorsFile f = SafeTensorsFile::read(path);
  OSPREY_CHECK(metadata_value(f, "model") == model.name(), "checkpoint '", path, "' holds a ",
               metadata_value(f, "model"), ", not a ", model.name());
  uint64_t rng_counter = std::stoull(metadata_value(f, "rng_counter"));
  // Check the optimizer part before anything is written, so a failed load changes nothing.
  std::vector<std::pair<std::string, Tensor>> slots;
  int64_t steps = 0;
  if (optimizer) {
    OSPREY_CHECK(metadata_value(f, "optimizer") == optimizer->options().kind, "checkpoint '", path,
                 "' was trained with ", metadata_value(f, "optimizer"), ", not ",
                 optimizer->options().kind);
    steps = std::stoll(metadata_value(f, "optimizer_steps"));
    slots = optimizer->state();
    for (const auto& [slot, flat] : slots)
      for (const Parameter& p : model.params().params()) {
        std::string key = kOptimizerPrefix + slot + "." + p.name;
        OSPREY_CHECK(f.has(key), "checkpoint '", path, "' has no optimizer state '", key, "'");
        OSPREY_CHECK(f.shape(key) == p.torch_shape(), "checkpoint '", path, "': '", key,
                     "' has shape ", shape_str(f.shape(key)), ", expected ",
                     shape_str(p.torch_shape()));
      }
  }
  // The state_dict part: everything except optimizer.* must match the model exactly.
  for (const std::string& name : f.names())
    OSPREY_CHECK(name.rfind(kOptimizerPrefix, 0) == 0 || model.params().find(name) ||
                     model.params().find_buffer(name),
                 "checkpoint '", path, "' has a tensor '", name, "' the model does not have");
  load_torch_state_dict(model.params(), f, /*strict=*/false);
  for (const auto& [slot, flat] : slots) {
    Tensor host = flat.to(Device::cpu);
    for (const Parameter& p : model.params().params())
      p.from_torch(f.floats(kOptimizerPrefix + slot + "." + p.name).data(),
                   host.data<float>() + p.offset);
    if (!host.same(flat)) flat.copy_from(host);
  }
  if (optimizer) optimizer->set_steps(steps);
  model.rng().set_counter(rng_counter);
  return f.metadata();
}

CheckpointMetadata read_checkpoint_metadata(const std::string& path) {
  return SafeTensorsFile::read(path).metadata();
}

}  // namespace osprey
