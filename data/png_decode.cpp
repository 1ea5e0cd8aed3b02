#include "data/png_decode.h"

#include <png.h>

#include <climits>
#include <cstring>

#include "kernels/error.h"

namespace osprey::data::detail {
namespace {

// Begins a read from memory; the destructor frees what libpng allocated, also when
// png_image_finish_read (which frees it itself) is never reached.
struct PngReader {
  png_image img;
  PngReader(const uint8_t* p, size_t n, const std::string& name) {
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, p, n))
      fail("image ", name, ": not a readable PNG (", img.message, ")");
    OSPREY_CHECK(img.width <= INT_MAX && img.height <= INT_MAX, "image ", name, ": PNG of ",
                 img.width, "x", img.height, " is too large");
  }
  ~PngReader() { png_image_free(&img); }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;
};

Image header_of(const png_image& img) {
  Image out;
  out.h = int(img.height);
  out.w = int(img.width);
  out.c = int(PNG_IMAGE_SAMPLE_CHANNELS(img.format));
  return out;
}

// Whether the chunks, walked from the signature, reach a whole IEND chunk. libpng stops reading
// at the end of the image data, so without this a file cut after its IDAT would decode; like a
// JPEG without its EOI, it is refused as truncated.
bool reaches_iend(const uint8_t* p, size_t n) {
  for (size_t at = 8; n - at >= 12;) {  // length, type, CRC: 12 bytes around the data
    if (std::memcmp(p + at + 4, "IEND", 4) == 0) return true;
    const size_t len =
        size_t(p[at]) << 24 | size_t(p[at + 1]) << 16 | size_t(p[at + 2]) << 8 | size_t(p[at + 3]);
    if (len > n - at - 12) return false;
    at += 12 + len;
  }
  return false;
}

}  // namespace

bool is_png(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return n >= sizeof sig && std::memcmp(p, sig, sizeof sig) == 0;
}

Image png_header(const uint8_t* p, size_t n, const std::string& name) {
  return header_of(PngReader(p, n, name).img);
}

Image png_decode(const uint8_t* p, size_t n, const std::string& name, size_t max_pixels) {
  PngReader r(p, n, name);
  OSPREY_CHECK(reaches_iend(p, n), "image ", name,
               ": corrupt or truncated PNG (the file ends before its IEND chunk)");
  // The file's own channels at 8 bits. 16-bit samples without a gAMA/sRGB chunk are taken as
  // sRGB, as PIL and stb_image read them, not as the linear light libpng assumes by default.
  r.img.format &= ~png_uint_32(PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLORMAP);
  r.img.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  Image out = header_of(r.img);
  out.pixels.resize(checked_image_bytes(out.h, out.w, out.c, max_pixels, name));
  // A missing or short IDAT, a bad CRC or zlib stream, or the end of the bytes before IEND is
  // an error here (libpng reads the whole file through IEND), never a partly filled image.
  if (!png_image_finish_read(&r.img, nullptr, out.pixels.data(), 0, nullptr))
    fail("image ", name, ": corrupt or truncated PNG (", r.img.message, ")");
  return out;
}

}  // namespace osprey::data::detail
