// A JSON run config (configs/*.json, --config): parsed, validated, and its augmentation
// pipelines built, as `osprey train` does before touching any data.
#include "tests/fuzz/fuzz_support.h"
#include "tools/config.h"
#include "tools/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = osprey::fuzz::scratch_path("config.json");
  osprey::fuzz::write_bytes(path, data, size);
  return osprey::fuzz::expect_clean([&] {
    osprey::tools::TrainConfig cfg = osprey::tools::load_config_file(path);
    osprey::tools::validate(cfg);
    osprey::tools::make_pipelines(cfg, osprey::data::ImageShape{28, 28, 1});
  });
}
