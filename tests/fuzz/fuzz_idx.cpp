// IDX images + labels (MNIST / Fashion-MNIST files, plain or gzip). Input: a 4-byte big-endian
// length L, then L bytes of the images file, then the labels file.
#include "data/idx.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  size_t split = (size_t(data[0]) << 24 | size_t(data[1]) << 16 | size_t(data[2]) << 8 | data[3]);
  data += 4, size -= 4;
  if (split > size) split = size;
  static const std::string images = osprey::fuzz::scratch_path("idx_images");
  static const std::string labels = osprey::fuzz::scratch_path("idx_labels");
  osprey::fuzz::write_bytes(images, data, split);
  osprey::fuzz::write_bytes(labels, data + split, size - split);
  return osprey::fuzz::expect_clean([&] { osprey::data::read_idx(images, labels); });
}
