// Single images for image folders and for prediction: PNG (Debian's libpng) and JPEG (Debian's
// libjpeg-turbo), told apart by their first bytes, and a bilinear resize that shares its code
// with the augmentation resize. 16-bit PNGs come out as 8 bits; any other format is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace osprey::data {

struct Image {
  int h = 0, w = 0, c = 0;
  std::vector<uint8_t> pixels;  // h * w * c, HWC
};

// The default bound on width * height of a decoded image: 4096 x 4096, as `osprey serve`'s
// default --max-image-side. With at most 4 channels a decode allocates at most 64 MiB.
constexpr size_t kMaxImagePixels = size_t(4096) * 4096;

// Reads and decodes an image file. channels 1..4 converts (gray = PIL's convert("L"):
// (19595 R + 38470 G + 7471 B + 32768) >> 16; gray -> RGB replicates; alpha dropped, or 255
// when added); 0 keeps the file's own. An image of more than max_pixels pixels is refused from
// its header, before any pixel is decoded. A file that cannot be read, is neither PNG nor JPEG,
// is truncated or corrupt (libjpeg-turbo's warnings included) throws osprey::Error naming it.
Image load_image(const std::string& path, int channels, size_t max_pixels = kMaxImagePixels);

// The same for bytes already in memory (an upload); name appears in error messages.
Image decode_image(const void* data, size_t size, int channels, const std::string& name,
                   size_t max_pixels = kMaxImagePixels);
// Width and height from the header alone (no pixels decoded), so a server can refuse an image
// whose decoded size would be huge before allocating it. Fails on a non-image.
void probe_image(const void* data, size_t size, const std::string& name, int& height, int& width);

// h * w * c in bytes, after checking h * w <= max_pixels (osprey::Error naming the image when
// not): every decoder calls it before allocating.
size_t checked_image_bytes(int h, int w, int c, size_t max_pixels, const std::string& name);

// Bilinear resize (align_corners = false, no antialiasing: tf::resize_bilinear), rounded back
// to uint8. Returns a copy when the size is already right.
Image resize_image(const Image& img, int height, int width);

}  // namespace osprey::data
