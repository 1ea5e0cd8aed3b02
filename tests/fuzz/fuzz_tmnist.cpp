// The TMNIST CSV (header names,labels,1..784, then one typeface glyph per row).
#include "data/tmnist.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = osprey::fuzz::scratch_path("tmnist.csv");
  osprey::fuzz::write_bytes(path, data, size);
  return osprey::fuzz::expect_clean([&] { osprey::data::load_tmnist(path); });
}
