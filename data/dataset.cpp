#include "data/dataset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "data/loader.h"
#include "kernels/error.h"

namespace osprey::data {

void replicate_channels(Dataset& ds, int channels) {
  if (ds.c == channels) return;
  OSPREY_CHECK(ds.c == 1 && channels == 3, "replicate_channels: dataset '", ds.name, "' has ", ds.c,
               " channel(s); only 1 -> 3 (grayscale to RGB) is supported, asked for ", channels);
  const int64_t pixels = int64_t(ds.n) * ds.h * ds.w;
  OSPREY_CHECK(int64_t(ds.pixels.size()) == pixels, "replicate_channels: dataset '", ds.name,
               "' has ", ds.pixels.size(), " pixel bytes, expected ", pixels);
  std::vector<uint8_t> rgb(size_t(pixels) * 3);
  for (int64_t p = 0; p < pixels; ++p) std::fill_n(rgb.data() + 3 * p, 3, ds.pixels[size_t(p)]);
  ds.pixels.swap(rgb);
  ds.c = 3;
}

void check_batch_indices(const Dataset& ds, const int64_t* indices, int64_t count,
                         const char* what) {
  const int64_t isz = ds.image_size();
  OSPREY_CHECK(int64_t(ds.pixels.size()) == int64_t(ds.n) * isz, what, ": dataset '", ds.name,
               "' has ", ds.pixels.size(), " pixel bytes, expected ", ds.n, " * ", isz);
  for (int64_t i = 0; i < count; ++i)
    OSPREY_CHECK(indices[i] >= 0 && indices[i] < ds.n, what, ": index ", indices[i],
                 " at position ", i, " is outside dataset '", ds.name, "' of ", ds.n, " images");
}

std::vector<uint8_t> read_file_bytes(const std::string& path, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(what, " ", path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  for (size_t got; (got = std::fread(buf, 1, sizeof buf, f)) > 0;)
    bytes.insert(bytes.end(), buf, buf + got);
  const bool bad = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (bad)
    fail(what, " ", path, ": read error after offset ", bytes.size(), ": ", std::strerror(err));
  return bytes;
}

Dataset subset(const Dataset& ds, const std::vector<int64_t>& indices) {
  Dataset out;
  out.name = ds.name;
  out.h = ds.h;
  out.w = ds.w;
  out.c = ds.c;
  out.num_classes = ds.num_classes;
  out.class_names = ds.class_names;
  out.n = int(indices.size());
  const int64_t isz = ds.image_size();
  OSPREY_CHECK(
      int64_t(ds.pixels.size()) == int64_t(ds.n) * isz && int64_t(ds.labels.size()) == ds.n,
      "subset: dataset '", ds.name, "' has inconsistent pixel/label counts");
  out.pixels.resize(size_t(out.n * isz));
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t k = indices[i];
    OSPREY_CHECK(k >= 0 && k < ds.n, "subset: index ", k, " at position ", i,
                 " is outside dataset '", ds.name, "' of ", ds.n, " images");
    std::copy_n(ds.pixels.begin() + k * isz, isz, out.pixels.begin() + int64_t(i) * isz);
    out.labels[i] = ds.labels[size_t(k)];
  }
  return out;
}

std::pair<Dataset, Dataset> split_holdout(const Dataset& ds, double test_fraction, uint64_t seed) {
  OSPREY_CHECK(test_fraction >= 0.0 && test_fraction <= 1.0, "split_holdout: test fraction ",
               test_fraction, " is outside [0, 1]");
  std::vector<int64_t> order;
  epoch_order(ds.n, true, seed, 0, order);
  const int64_t n_test = std::llround(double(ds.n) * test_fraction);
  std::vector<int64_t> test(order.begin(), order.begin() + n_test);
  std::vector<int64_t> train(order.begin() + n_test, order.end());
  std::sort(test.begin(), test.end());
  std::sort(train.begin(), train.end());
  return {subset(ds, train), subset(ds, test)};
}

}  // namespace osprey::data
