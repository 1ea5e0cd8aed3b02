// TMNIST (Typography MNIST, 94 characters): one CSV file with the header
// "names,labels,1,2,...,784" and one row per glyph: font name, the character, then 784 pixel
// values 0..255 of a 28x28 grayscale image in row-major order. Fields may be quoted as in
// RFC 4180 (a comma or quote label is written "," or """").
#pragma once
#include <string>
#include <utility>

#include "data/dataset.h"

namespace osprey::data {

// The class of a character is its position among the 94 printable ASCII characters '!' (33) ..
// '~' (126) in code order: class = code - 33, fixed whatever labels a file contains, so a model
// trained on one file reads the same classes on another. class_names are the one-character
// strings "!" .. "~".
constexpr int kTmnistClasses = 94;
const std::vector<std::string>& tmnist_class_names();

// Reads the CSV into an n x 28 x 28 x 1 dataset named "tmnist" with 94 classes. A bad header,
// a row with the wrong number of columns, a label outside '!'..'~', or a pixel that is not an
// integer in 0..255 throws osprey::Error naming the file, line and column.
Dataset load_tmnist(const std::string& csv_path);

// split_holdout (train, test) is declared in data/dataset.h. A folder of train.csv and test.csv
// (osprey data typefaces, data/typefaces.h) is a split already: tools/datasets.cpp loads both.

}  // namespace osprey::data
