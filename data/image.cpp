#include "data/image.h"

#include <cmath>
#include <cstring>

#include "data/dataset.h"
#include "data/jpeg_decode.h"
#include "data/png_decode.h"
#include "data/transforms.h"
#include "kernels/error.h"

namespace osprey::data {
namespace {

constexpr const char* kSupported = "supported formats: PNG, JPEG";

bool starts_with(const uint8_t* p, size_t n, const char* magic, size_t len, size_t at = 0) {
  return n >= at + len && std::memcmp(p + at, magic, len) == 0;
}

// A format recognised by its first bytes but not decoded (stb_image read some of them before),
// for the error message; nullptr when the bytes are no known image.
const char* unsupported_format(const uint8_t* p, size_t n) {
  struct Magic {
    const char* bytes;
    size_t len;
    const char* name;
  };
  static const Magic magics[] = {{"BM", 2, "BMP"},
                                 {"GIF87a", 6, "GIF"},
                                 {"GIF89a", 6, "GIF"},
                                 {"II*\0", 4, "TIFF"},
                                 {"MM\0*", 4, "TIFF"},
                                 {"8BPS", 4, "PSD"},
                                 {"#?RADIANCE", 10, "HDR"},
                                 {"#?RGBE", 6, "HDR"},
                                 {"\x53\x80\xF6\x34", 4, "PIC"},
                                 {"qoif", 4, "QOI"},
                                 {"\0\0\0\x0cjP", 6, "JPEG 2000"}};
  for (const Magic& m : magics)
    if (starts_with(p, n, m.bytes, m.len)) return m.name;
  if (starts_with(p, n, "RIFF", 4) && starts_with(p, n, "WEBP", 4, 8)) return "WebP";
  if (starts_with(p, n, "ftyp", 4, 4)) return "HEIF/AVIF";
  if (n >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7' &&
      (p[2] == ' ' || p[2] == '\t' || p[2] == '\r' || p[2] == '\n'))
    return "PNM";
  return nullptr;
}

enum class Format { png, jpeg };

Format detect(const uint8_t* p, size_t n, const std::string& name) {
  OSPREY_CHECK(n > 0, "image ", name, ": is empty (0 bytes), not an image");
  if (detail::is_png(p, n)) return Format::png;
  if (detail::is_jpeg(p, n)) return Format::jpeg;
  if (const char* other = unsupported_format(p, n))
    fail("image ", name, ": not a readable image (", other, " is not supported; ", kSupported, ")");
  fail("image ", name, ": not a readable image (neither PNG nor JPEG by its first bytes; ",
       kSupported, ")");
}

// PIL's convert("L"): ITU-R 601-2 weights in 16-bit fixed point, rounded; they sum to 65536,
// so a gray pixel keeps its level.
uint8_t luma(const uint8_t* rgb) {
  return uint8_t((19595u * rgb[0] + 38470u * rgb[1] + 7471u * rgb[2] + 0x8000u) >> 16);
}

// stb_image's (and PIL's) channel rules, with PIL's luma: gray <-> RGB, alpha dropped or 255.
Image convert_channels(Image src, int c) {
  if (c == 0 || c == src.c) return src;
  Image out{src.h, src.w, c, {}};
  const size_t count = size_t(src.h) * size_t(src.w);  // <= max_pixels: the products fit
  out.pixels.resize(count * size_t(c));
  const bool color = src.c >= 3, alpha = src.c == 2 || src.c == 4;
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* s = &src.pixels[i * size_t(src.c)];
    uint8_t* d = &out.pixels[i * size_t(c)];
    const uint8_t gray = color ? luma(s) : s[0], a = alpha ? s[src.c - 1] : 255;
    if (c <= 2) {
      d[0] = gray;
    } else {
      d[0] = color ? s[0] : gray;
      d[1] = color ? s[1] : gray;
      d[2] = color ? s[2] : gray;
    }
    if (c == 2 || c == 4) d[c - 1] = a;
  }
  return out;
}

}  // namespace

size_t checked_image_bytes(int h, int w, int c, size_t max_pixels, const std::string& name) {
  OSPREY_CHECK(h >= 1 && w >= 1 && c >= 1, "image ", name, ": invalid size ", w, "x", h, "x", c);
  size_t pixels = 0, bytes = 0;
  if (__builtin_mul_overflow(size_t(h), size_t(w), &pixels) || pixels > max_pixels)
    fail("image ", name, ": ", w, "x", h, " exceeds the limit of ", max_pixels, " pixels");
  OSPREY_CHECK(!__builtin_mul_overflow(pixels, size_t(c), &bytes), "image ", name, ": ", w, "x", h,
               "x", c, " overflows");
  return bytes;
}

void probe_image(const void* data, size_t size, const std::string& name, int& height, int& width) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const Image header = detect(p, size, name) == Format::png ? detail::png_header(p, size, name)
                                                            : detail::jpeg_header(p, size, name);
  height = header.h;
  width = header.w;
}

Image decode_image(const void* data, size_t size, int channels, const std::string& name,
                   size_t max_pixels) {
  OSPREY_CHECK(channels >= 0 && channels <= 4, "image ", name, ": channels must be 0..4, got ",
               channels);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  Image img = detect(p, size, name) == Format::png ? detail::png_decode(p, size, name, max_pixels)
                                                   : detail::jpeg_decode(p, size, name, max_pixels);
  return convert_channels(std::move(img), channels);
}

Image load_image(const std::string& path, int channels, size_t max_pixels) {
  std::vector<uint8_t> bytes = read_file_bytes(path, "image");
  return decode_image(bytes.data(), bytes.size(), channels, path, max_pixels);
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
