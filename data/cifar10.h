// CIFAR-10 in its official binary form (cifar-10-binary.tar.gz): data_batch_1.bin ..
// data_batch_5.bin (train, 50000 images) and test_batch.bin (10000). Each record is 3073 bytes:
// a label byte 0..9, then the 32x32 red plane, green plane and blue plane (row-major).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace osprey::data {

// airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck: labels 0..9.
const std::vector<std::string>& cifar10_class_names();

// Appends the records of one batch file to ds (NHWC 32x32x3 uint8), which must be empty or hold
// CIFAR-10 images. A size that is not a whole number of records, a label above 9, or a file that
// cannot be read throws osprey::Error naming the file and the record and byte offset at fault.
void read_cifar10_batch(const std::string& path, Dataset& ds);

// Loads the train or test split from dir, or from dir/cifar-10-batches-bin when dir is the
// folder the archive was extracted into. name is "cifar10", 10 classes with the names above.
Dataset load_cifar10(const std::string& dir, bool train);

}  // namespace osprey::data
