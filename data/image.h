// Single images for image folders and for prediction: decoding with stb_image (PNG, JPEG, BMP,
// GIF first frame, TGA, PSD, HDR, PIC, PNM; 16-bit and HDR data come out as 8 bits) and a
// bilinear resize that shares its code with the augmentation resize.
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

// Reads and decodes an image file. channels 1..4 converts (stb_image's rules: gray = (77 R +
// 150 G + 29 B) >> 8, gray -> RGB replicates, alpha dropped); 0 keeps the file's own. A file that
// cannot be read or is not a decodable image throws osprey::Error naming it.
Image load_image(const std::string& path, int channels);

// The same for bytes already in memory (an upload); name appears in error messages.
Image decode_image(const void* data, size_t size, int channels, const std::string& name);
// Width and height from the header alone (no pixels decoded), so a server can refuse an image
// whose decoded size would be huge before allocating it. Fails on a non-image.
void probe_image(const void* data, size_t size, const std::string& name, int& height, int& width);

// Bilinear resize (align_corners = false, no antialiasing: tf::resize_bilinear), rounded back
// to uint8. Returns a copy when the size is already right.
Image resize_image(const Image& img, int height, int width);

}  // namespace osprey::data
