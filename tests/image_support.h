// Encoders for the tests that need image files: PNG through libpng, JPEG through libjpeg-turbo,
// the libraries data/image.cpp decodes with (tests/cmake/image.cmake links them).
#pragma once
#include <png.h>
#include <turbojpeg.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace osprey::tests {

// PNG bytes of an 8-bit image of c = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels;
// with a colormap (RGB entries), px holds one palette index per pixel.
inline std::string png_bytes(const std::vector<uint8_t>& px, int h, int w, int c,
                             const std::vector<uint8_t>& colormap = {}) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(w);
  img.height = png_uint_32(h);
  const png_uint_32 formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  img.format = colormap.empty() ? formats[c - 1] : PNG_FORMAT_RGB_COLORMAP;
  img.colormap_entries = png_uint_32(colormap.size() / 3);
  const void* cmap = colormap.empty() ? nullptr : colormap.data();
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_get_memory_size(img, size, 0, px.data(), 0, cmap));
  std::string out(size, '\0');
  REQUIRE(png_image_write_to_memory(&img, out.data(), &size, 0, px.data(), 0, cmap));
  out.resize(size);
  return out;
}

// Baseline JPEG bytes (standard Huffman tables) of a gray (c = 1), RGB (3) or CMYK (4) image.
inline std::string jpeg_bytes(const std::vector<uint8_t>& px, int h, int w, int c,
                              int quality = 95) {
  tjhandle tj = tjInitCompress();
  REQUIRE(tj);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int pf = c == 1 ? TJPF_GRAY : c == 3 ? TJPF_RGB : TJPF_CMYK;
  const int rc = tjCompress2(tj, px.data(), w, 0, h, pf, &buf, &size,
                             c == 1 ? TJSAMP_GRAY : TJSAMP_444, quality, 0);
  tjDestroy(tj);
  REQUIRE(rc == 0);
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  return out;
}

// Writes an h x w x c 8-bit image as a PNG file.
inline void write_png(const std::string& path, const uint8_t* px, int h, int w, int c) {
  const std::string bytes = png_bytes(std::vector<uint8_t>(px, px + size_t(h) * w * c), h, w, c);
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

}  // namespace osprey::tests
