// A dataset stored as one subfolder of images per class (torchvision's ImageFolder layout):
//   dir/cat/0001.png, dir/cat/0002.jpg, dir/dog/a.png, ...
#pragma once
#include <string>

#include "data/dataset.h"
#include "data/image.h"

namespace osprey::data {

// Class names are the subfolder names in byte order (class k = k-th name); images within a
// class are read in byte order of their file names. Entries whose names start with '.' are
// skipped, as are plain files directly in dir. channels is 1 or 3 (converted as decode_image
// does). Images are resized to height x width where they differ (resize_image: bilinear,
// align_corners = false); height or width <= 0 means every image must have the size of the first
// one, else an error naming the file. A missing or empty folder, a class folder without files,
// or a file that is not a decodable image throws osprey::Error naming it.
// Dataset::name is the last component of dir.
Dataset load_image_folder(const std::string& dir, int channels, int height, int width);

}  // namespace osprey::data
