// One CIFAR-10 binary batch file (records of a label byte and 3x32x32 pixels).
#include "data/cifar10.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = osprey::fuzz::scratch_path("cifar10");
  osprey::fuzz::write_bytes(path, data, size);
  return osprey::fuzz::expect_clean([&] {
    osprey::data::Dataset ds;
    osprey::data::read_cifar10_batch(path, ds);
  });
}
