#include "engine/state_dict.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/parse.h"

namespace osprey {
namespace {

void copy_buffer(const Buffer& b, const SafeTensorsFile& file) {
  if (b.value.dtype() == DType::i64) {
    std::vector<int64_t> v = file.ints(b.name);
    std::copy(v.begin(), v.end(), b.value.data<int64_t>());
  } else {
    b.value.copy_from(Tensor::from_data(b.value.shape(), file.floats(b.name)));
  }
}

// Loads the given parameters through a host copy of the flat buffer (one upload when the
// model lives on a GPU).
void load_params(const ParamStore& store, const std::vector<const Parameter*>& params,
                 const SafeTensorsFile& file) {
  Tensor host = store.flat_data().to(Device::cpu);
  for (const Parameter* p : params)
    p->from_torch(file.floats(p->name).data(), host.data<float>() + p->offset);
  if (!host.same(store.flat_data())) store.flat_data().copy_from(host);
}

}  // namespace

void require_finite(const SafeTensorsFile& file, const std::string& name) {
  const SafeTensorEntry& e = file.entry(name);
  if (e.dtype != "F32" && e.dtype != "F64" && e.dtype != "F16" && e.dtype != "BF16") return;
  std::vector<float> v = file.floats(name);
  for (size_t i = 0; i < v.size(); ++i)
    OSPREY_CHECK(std::isfinite(v[i]), "state_dict '", printable(file.path()), "': tensor '",
                 printable(name), "' holds a non-finite value (", v[i], ") at flat index ", i,
                 ": refusing to load NaN/Inf weights");
}

void load_torch_state_dict(const ParamStore& store, const SafeTensorsFile& file, bool strict) {
  for (const Parameter& p : store.params()) {
    OSPREY_CHECK(file.has(p.name), "state_dict '", file.path(), "' has no tensor '", p.name,
                 "' that the model needs");
    Shape want = p.torch_shape();
    OSPREY_CHECK(file.shape(p.name) == want, "state_dict '", file.path(), "': '", p.name,
                 "' has shape ", shape_str(file.shape(p.name)), " but the model expects ",
                 shape_str(want));
  }
  for (const Buffer& b : store.buffers()) {
    OSPREY_CHECK(file.has(b.name), "state_dict '", file.path(), "' has no tensor '", b.name,
                 "' that the model needs");
    OSPREY_CHECK(shape_numel(file.shape(b.name)) == b.value.numel(), "state_dict '", file.path(),
                 "': '", b.name, "' has shape ", shape_str(file.shape(b.name)),
                 " but the model expects ", shape_str(b.value.shape()));
  }
  if (strict) {
    std::string unknown;
    for (const std::string& name : file.names())
      if (!store.find(name) && !store.find_buffer(name))
        unknown += (unknown.empty() ? "" : ", ") + name;
    OSPREY_CHECK(unknown.empty(), "state_dict '", file.path(),
                 "' has tensors the model does not have: ", unknown);
  }
  for (const Parameter& p : store.params()) require_finite(file, p.name);
  for (const Buffer& b : store.buffers()) require_finite(file, b.name);
  // Only after every check passed: a failed load leaves the model untouched.
  std::vector<const Parameter*> all;
  for (const Parameter& p : store.params()) all.push_back(&p);
  load_params(store, all, file);
  for (const Buffer& b : store.buffers()) copy_buffer(b, file);
}

std::vector<std::string> load_pretrained_state_dict(const ParamStore& store,
                                                    const SafeTensorsFile& file,
                                                    const std::vector<std::string>& replaceable) {
  auto is_replaceable = [&](const std::string& name) {
    for (const std::string& prefix : replaceable)
      if (name.rfind(prefix, 0) == 0) return true;
    return false;
  };
  std::vector<std::string> fresh;
  auto plan = [&](const std::string& name, const Shape& want) {
    OSPREY_CHECK(file.has(name), "pretrained state_dict '", file.path(), "' has no tensor '", name,
                 "'");
    if (shape_numel(file.shape(name)) == shape_numel(want) &&
        file.shape(name).size() == want.size())
      return true;
    OSPREY_CHECK(is_replaceable(name), "pretrained state_dict '", file.path(), "': '", name,
                 "' has shape ", shape_str(file.shape(name)), " but the model expects ",
                 shape_str(want));
    fresh.push_back(name);
    return false;
  };
  std::vector<const Parameter*> to_load;
  std::vector<const Buffer*> load_buffers;
  for (const Parameter& p : store.params())
    if (plan(p.name, p.torch_shape())) to_load.push_back(&p);
  for (const Buffer& b : store.buffers())
    if (plan(b.name, b.value.shape())) load_buffers.push_back(&b);
  for (const Parameter* p : to_load) require_finite(file, p->name);
  for (const Buffer* b : load_buffers) require_finite(file, b->name);
  load_params(store, to_load, file);
  for (const Buffer* b : load_buffers) copy_buffer(*b, file);
  return fresh;
}

void add_torch_state_dict(const ParamStore& store, SafeTensorsWriter& writer,
                          const std::string& prefix) {
  std::vector<float> buf;
  Tensor host = store.flat_data().to(Device::cpu);
  for (const Parameter& p : store.params()) {
    buf.resize(size_t(p.value.numel()));
    p.to_torch(host.data<float>() + p.offset, buf.data());
    writer.add_f32(prefix + p.name, p.torch_shape(), buf.data());
  }
  for (const Buffer& b : store.buffers()) {
    Tensor value = b.value.to(Device::cpu);
    if (value.dtype() == DType::i64)
      writer.add_i64(prefix + b.name, value.shape(), value.data<int64_t>());
    else
      writer.add_f32(prefix + b.name, value.shape(), value.data<float>());
  }
}

}  // namespace osprey
