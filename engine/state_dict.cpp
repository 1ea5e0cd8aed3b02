#include "engine/state_dict.h"

#include <vector>

namespace osprey {

void load_torch_state_dict(const ParamStore& store, const SafeTensorsFile& file, bool strict) {
  for (const Parameter& p : store.params()) {
    OSPREY_CHECK(file.has(p.name), "state_dict '", file.path(), "' has no tensor '", p.name,
                 "' that the model needs");
    Shape want = p.torch_shape();
    OSPREY_CHECK(file.shape(p.name) == want, "state_dict '", file.path(), "': '", p.name,
                 "' has shape ", shape_str(file.shape(p.name)), " but the model expects ",
                 shape_str(want));
  }
  if (strict) {
    std::string unknown;
    for (const std::string& name : file.names())
      if (!store.find(name)) unknown += (unknown.empty() ? "" : ", ") + name;
    OSPREY_CHECK(unknown.empty(), "state_dict '", file.path(),
                 "' has tensors the model does not have: ", unknown);
  }
  // Only after every check passed: a failed load leaves the model untouched.
  for (const Parameter& p : store.params()) p.from_torch(file.floats(p.name).data());
}

void add_torch_state_dict(const ParamStore& store, SafeTensorsWriter& writer,
                          const std::string& prefix) {
  std::vector<float> buf;
  for (const Parameter& p : store.params()) {
    buf.resize(size_t(p.value.numel()));
    p.to_torch(buf.data());
    writer.add_f32(prefix + p.name, p.torch_shape(), buf.data());
  }
}

}  // namespace osprey
