// safetensors files: the header and every tensor read back, then loaded as a state_dict into
// the Fashion-MNIST model (names, shapes and layouts checked against the model's).
#include "engine/safetensors.h"
#include "engine/state_dict.h"
#include "models/simple_cnn.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = osprey::fuzz::scratch_path("st.safetensors");
  static osprey::models::SimpleCnn model(1, 8, 8, 3);
  osprey::fuzz::write_bytes(path, data, size);
  return osprey::fuzz::expect_clean([&] {
    osprey::SafeTensorsFile f = osprey::SafeTensorsFile::read(path);
    for (const std::string& name : f.names()) {
      const std::string& dtype = f.entry(name).dtype;
      if (dtype == "F32") f.floats(name);
      if (dtype == "I64") f.ints(name);
    }
    osprey::load_torch_state_dict(model.params(), f);
  });
}
