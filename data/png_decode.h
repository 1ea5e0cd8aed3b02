// PNG through Debian's libpng, its simplified API (png_image): libpng's setjmp error handling
// stays inside libpng, so a corrupt or truncated file is a failed call with a message, never a
// longjmp across our frames. Internal to data/image.cpp, which picks the decoder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace osprey::data::detail {

bool is_png(const uint8_t* p, size_t n);  // the 8-byte signature

// The header's size and the file's own channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; a
// palette becomes RGB, tRNS an alpha channel), pixels left empty. Throws on a bad header.
Image png_header(const uint8_t* p, size_t n, const std::string& name);

// The pixels in the file's own channels, 8 bits each (16-bit samples scaled down). Refuses
// more than max_pixels before allocating, and any truncated or corrupt file.
Image png_decode(const uint8_t* p, size_t n, const std::string& name, size_t max_pixels);

}  // namespace osprey::data::detail
