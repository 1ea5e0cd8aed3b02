#include "data/image.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "data/dataset.h"
#include "data/transforms.h"
#include "engine/error.h"

// The one stb_image implementation in Osprey. STB_IMAGE_STATIC keeps its symbols private to this
// file, so another component embedding stb_image (or linking Debian's libstb) cannot clash.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace osprey::data {

void probe_image(const void* data, size_t size, const std::string& name, int& height, int& width) {
  OSPREY_CHECK(size > 0 && size <= size_t(INT_MAX), "image ", name, ": empty or too large");
  int c = 0;
  if (!stbi_info_from_memory(static_cast<const stbi_uc*>(data), int(size), &width, &height, &c))
    fail("image ", name, ": not a readable image (", stbi_failure_reason(), ")");
}

Image decode_image(const void* data, size_t size, int channels, const std::string& name) {
  OSPREY_CHECK(channels >= 0 && channels <= 4, "image ", name, ": channels must be 0..4, got ",
               channels);
  OSPREY_CHECK(size > 0, "image ", name, ": is empty (0 bytes), not an image");
  OSPREY_CHECK(size <= size_t(INT_MAX), "image ", name, ": ", size,
               " bytes is too large to decode");
  int w = 0, h = 0, file_c = 0;
  uint8_t* px = stbi_load_from_memory(static_cast<const stbi_uc*>(data), int(size), &w, &h, &file_c,
                                      channels);
  if (!px)
    fail("image ", name, ": not a readable image (", stbi_failure_reason(),
         "); supported: PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC, PNM");
  Image img;
  img.h = h;
  img.w = w;
  img.c = channels == 0 ? file_c : channels;
  img.pixels.assign(px, px + size_t(h) * w * img.c);
  stbi_image_free(px);
  return img;
}

Image load_image(const std::string& path, int channels) {
  std::vector<uint8_t> bytes = read_file_bytes(path, "image");
  return decode_image(bytes.data(), bytes.size(), channels, path);
}

Image resize_image(const Image& img, int height, int width) {
  OSPREY_CHECK(height >= 1 && width >= 1, "resize_image: target size ", height, "x", width,
               " must be positive");
  if (img.h == height && img.w == width) return img;
  const size_t n_in = size_t(img.h) * img.w * img.c, n_out = size_t(height) * width * img.c;
  // Resizing the 0..255 values directly: bilinear weights sum to 1, so no scaling is needed.
  std::vector<float> in(img.pixels.begin(), img.pixels.begin() + n_in), out(n_out);
  tf::resize_bilinear(in.data(), img.h, img.w, img.c, out.data(), height, width);
  Image r;
  r.h = height;
  r.w = width;
  r.c = img.c;
  r.pixels.resize(n_out);
  for (size_t i = 0; i < n_out; ++i)
    r.pixels[i] = uint8_t(std::lrint(std::min(255.0f, std::max(0.0f, out[i]))));
  return r;
}

}  // namespace osprey::data
