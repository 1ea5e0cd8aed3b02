// PyTorch .pth files: an input that starts like a zip is read as a whole .pth (archive, pickle,
// storages, views); any other input runs as data.pkl through the restricted unpickler, which is
// where a hostile .pth spends its effort once the archive checks pass.
#include <cstring>

#include "engine/pth.h"
#include "engine/torch_pickle.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = osprey::fuzz::scratch_path("model.pth");
  return osprey::fuzz::expect_clean([&] {
    if (size >= 4 && std::memcmp(data, "PK\x03\x04", 4) == 0) {
      osprey::fuzz::write_bytes(path, data, size);
      osprey::SafeTensorsFile f = osprey::read_pth(path);
      for (const std::string& name : f.names()) f.entry(name);
    } else {
      osprey::TorchPickle pickle("'data.pkl'",
                                 std::string(reinterpret_cast<const char*>(data), size));
      pickle.root();
    }
  });
}
