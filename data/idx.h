// Readers for IDX files, the format of MNIST and Fashion-MNIST: a big-endian header
// (magic 0x00000803 + count, rows, cols for images; 0x00000801 + count for labels) followed by
// uint8 data. Files may be raw or gzip-compressed; compression is detected from the content.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace osprey::data {

// Where Debian's dataset-fashion-mnist package installs the four .gz files.
constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// T-shirt/top, Trouser, ..., Ankle boot: the labels 0..9 of Fashion-MNIST.
const std::vector<std::string>& fashion_mnist_class_names();

// Reads an image file and its label file into an n x rows x cols x 1 dataset. num_classes is
// max label + 1 and class_names are "0".."K-1"; name is left empty. Any malformed input
// (bad magic, truncation, trailing bytes, count mismatch) throws osprey::Error naming the file.
Dataset read_idx(const std::string& images_path, const std::string& labels_path);

// Loads the train (train-images-idx3-ubyte, train-labels-idx1-ubyte) or test (t10k-...) split
// from dir, each file raw or with a .gz suffix. name becomes Dataset::name; when empty it is the
// last component of dir. A name containing "fashion" (any case) on a 10-class dataset gets the
// Fashion-MNIST class names.
Dataset load_idx_dataset(const std::string& dir, bool train, const std::string& name = "");

}  // namespace osprey::data
