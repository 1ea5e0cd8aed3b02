#include "engine/checkpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "engine/parse.h"
#include "engine/pth.h"
#include "engine/safetensors.h"
#include "engine/state_dict.h"

namespace osprey {
namespace {

const std::string kOptimizerPrefix = "optimizer.";

const std::string& metadata_value(const CheckpointMetadata& meta, const std::string& path,
                                  const std::string& key) {
  auto it = meta.find(key);
  OSPREY_CHECK(it != meta.end(), "checkpoint '", printable(path), "' has no '", printable(key),
               "' in its metadata: not an osprey checkpoint, or damaged");
  return it->second;
}

const std::string& metadata_value(const SafeTensorsFile& f, const std::string& key) {
  return metadata_value(f.metadata(), f.path(), key);
}

std::string metadata_what(const std::string& path, const std::string& key) {
  return "checkpoint '" + printable(path) + "': metadata '" + printable(key) + "'";
}

// ".NAME.tmp.PID" -> PID, or -1 for any other name.
long temp_file_pid(const std::string& name) {
  const std::string tag = ".tmp.";
  size_t at = name.rfind(tag);
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at == 0) return -1;
  std::string digits = name.substr(at + tag.size());
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return long(parse_int(digits, 0, 999999999, "temporary file '" + printable(name) + "'"));
}

bool process_alive(long pid) {
  return pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM);
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
  SafeTensorsFile f = read_tensor_file(path);
  OSPREY_CHECK(metadata_value(f, "model") == model.name(), "checkpoint '", path, "' holds a ",
               metadata_value(f, "model"), ", not a ", model.name());
  const uint64_t rng_counter =
      parse_uint64(metadata_value(f, "rng_counter"), metadata_what(path, "rng_counter"));
  // Check the optimizer part before anything is written, so a failed load changes nothing.
  std::vector<std::pair<std::string, Tensor>> slots;
  int64_t steps = 0;
  if (optimizer) {
    OSPREY_CHECK(metadata_value(f, "optimizer") == optimizer->options().kind, "checkpoint '", path,
                 "' was trained with ", metadata_value(f, "optimizer"), ", not ",
                 optimizer->options().kind);
    steps = parse_int(metadata_value(f, "optimizer_steps"), 0, INT64_MAX,
                      metadata_what(path, "optimizer_steps"));
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
  return read_tensor_file(path).metadata();
}

int64_t checkpoint_int(const CheckpointMetadata& meta, const std::string& path,
                       const std::string& key, int64_t lo, int64_t hi) {
  return parse_int(metadata_value(meta, path, key), lo, hi, metadata_what(path, key));
}

double checkpoint_double(const CheckpointMetadata& meta, const std::string& path,
                         const std::string& key, double lo, double hi) {
  return parse_double(metadata_value(meta, path, key), lo, hi, metadata_what(path, key));
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  std::error_code ec;
  const auto hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const long pid = temp_file_pid(e.path().filename().string());
    if (pid < 0 || !e.is_regular_file(ec)) continue;
    const bool old = e.last_write_time(ec) < hour_ago && !ec;
    if (pid != long(::getpid()) && process_alive(pid) && !old) continue;
    if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
  }
  return removed;
}

}  // namespace osprey
