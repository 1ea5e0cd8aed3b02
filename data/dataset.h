// An in-memory labelled image dataset: uint8 pixels in NHWC order, int64 labels.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace osprey::data {

struct ImageShape {
  int h = 0, w = 0, c = 0;
};

struct Dataset {
  std::string name;
  int n = 0, h = 0, w = 0, c = 0;
  int num_classes = 0;
  std::vector<uint8_t> pixels;           // n * h * w * c
  std::vector<int64_t> labels;           // n
  std::vector<std::string> class_names;  // num_classes entries

  int64_t image_size() const { return int64_t(h) * w * c; }
};

// Turns a grayscale dataset (c == 1) into `channels` == 3 by replicating the channel (the
// ImageNet-style models take RGB). No-op when c == channels; any other pair throws.
void replicate_channels(Dataset& ds, int channels);

// A dataset of the samples ds[indices[0]], ds[indices[1]], ... in that order, with ds's name
// and classes.
// Checks that ds's pixel buffer matches its shape and that indices[0, count) are samples of
// it; `what` names the caller in the message.
void check_batch_indices(const Dataset& ds, const int64_t* indices, int64_t count,
                         const char* what);

// The whole file; errors name it as "<what> <path>" (e.g. "image x.png: cannot open: ...").
std::vector<uint8_t> read_file_bytes(const std::string& path, const char* what);

Dataset subset(const Dataset& ds, const std::vector<int64_t>& indices);

// Splits ds into (train, test) for data sets without a test split (TMNIST, image folders):
// round(n * test_fraction) samples, chosen by epoch_order's seeded permutation (data/loader.h)
// so the split depends only on seed and n, go to test; the rest to train. Both keep the
// original sample order. test_fraction must be in [0, 1].
std::pair<Dataset, Dataset> split_holdout(const Dataset& ds, double test_fraction, uint64_t seed);

}  // namespace osprey::data
