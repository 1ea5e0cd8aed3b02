#include "data/cifar10.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/parse.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

constexpr int kSide = 32, kPlane = kSide * kSide;
constexpr int64_t kRecord = 1 + 3 * kPlane;  // 3073

namespace fs = std::filesystem;

std::vector<std::string> split_files(bool train) {
  if (!train) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

void read_cifar10_batch(const std::string& path, Dataset& ds) {
  OSPREY_CHECK(ds.n == 0 || (ds.h == kSide && ds.w == kSide && ds.c == 3),
               "read_cifar10_batch: dataset '", printable(ds.name),
               "' does not hold 32x32x3 images");
  std::vector<uint8_t> bytes = read_file_bytes(path, "CIFAR-10 file");
  const std::string file = printable(path);
  const int64_t size = int64_t(bytes.size());
  if (size == 0)
    fail("CIFAR-10 file ", file, ": is empty, expected records of ", kRecord, " bytes");
  if (size % kRecord != 0)
    fail("CIFAR-10 file ", file, ": size ", size, " bytes is not a multiple of the ", kRecord,
         "-byte record (1 label byte + 3072 pixel bytes): record ", size / kRecord,
         " starting at offset ", size / kRecord * kRecord, " is truncated to ", size % kRecord,
         " bytes");
  const int64_t records = size / kRecord;
  OSPREY_CHECK(ds.n + records <= INT32_MAX, "CIFAR-10 file ", file, ": too many images");
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t label = bytes[size_t(r * kRecord)];
    if (label > 9)
      fail("CIFAR-10 file ", file, ": record ", r, " (label byte at offset ", r * kRecord,
           ") has label ", int(label), ", expected 0..9");
  }

  const int64_t start = ds.n;
  ds.h = ds.w = kSide;
  ds.c = 3;
  ds.num_classes = 10;
  ds.class_names = cifar10_class_names();
  ds.n = int(start + records);
  ds.pixels.resize(size_t(ds.n) * 3 * kPlane);
  ds.labels.resize(size_t(ds.n));
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* rec = bytes.data() + r * kRecord;
    ds.labels[size_t(start + r)] = rec[0];
    uint8_t* dst = ds.pixels.data() + (start + r) * 3 * kPlane;
    // Channel-planar to interleaved HWC.
    for (int p = 0; p < kPlane; ++p)
      for (int ch = 0; ch < 3; ++ch) dst[3 * p + ch] = rec[1 + ch * kPlane + p];
  }
}

Dataset load_cifar10(const std::string& dir, bool train) {
  std::error_code ec;
  OSPREY_CHECK(fs::is_directory(dir, ec), "CIFAR-10 directory ", printable(dir),
               " does not exist or is not a directory");
  const std::vector<std::string> names = split_files(train);
  fs::path base(dir);
  // Accept the folder the archive was extracted into as well as the batches folder itself.
  if (!is_file(base / names[0]) && is_file(base / "cifar-10-batches-bin" / names[0]))
    base /= "cifar-10-batches-bin";
  for (const std::string& name : names)
    OSPREY_CHECK(is_file(base / name), "CIFAR-10 directory ", printable(base.string()),
                 ": missing ", name,
                 " (expected data_batch_1.bin .. data_batch_5.bin and test_batch.bin from the "
                 "binary version, cifar-10-binary.tar.gz)");
  Dataset ds;
  ds.name = "cifar10";
  for (const std::string& name : names) read_cifar10_batch((base / name).string(), ds);
  return ds;
}

}  // namespace osprey::data
