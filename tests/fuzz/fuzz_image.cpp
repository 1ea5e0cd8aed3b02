// Image decoding (what `osprey serve` does with every upload), as gray, RGB and as stored.
#include "data/image.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int channels : {0, 1, 3})
    osprey::fuzz::expect_clean([&] { osprey::data::decode_image(data, size, channels, "fuzz"); });
  return 0;
}
