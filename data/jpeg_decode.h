// JPEG through Debian's libjpeg-turbo, its TurboJPEG API: libjpeg's errors come back as a failed
// call with a message (TurboJPEG's own setjmp error manager), never exit(). Internal to
// data/image.cpp, which picks the decoder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace osprey::data::detail {

bool is_jpeg(const uint8_t* p, size_t n);  // SOI and the start of a marker: FF D8 FF

// The header's size and the file's own channels (1 gray, else 3: CMYK/YCCK come out as RGB),
// pixels left empty. Throws on a bad header.
Image jpeg_header(const uint8_t* p, size_t n, const std::string& name);

// The pixels in the file's own channels. Refuses more than max_pixels before allocating, and
// any file libjpeg-turbo only warns about (premature end of data, corrupt entropy data): a
// half-gray image must not be classified as if it were the upload.
Image jpeg_decode(const uint8_t* p, size_t n, const std::string& name, size_t max_pixels);

}  // namespace osprey::data::detail
