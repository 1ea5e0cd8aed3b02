#include "data/jpeg_decode.h"

#include <turbojpeg.h>

#include <vector>

#include "kernels/error.h"

namespace osprey::data::detail {
namespace {

// One decompressor per call (serve decodes uploads concurrently); destroyed on every path.
struct TjDecoder {
  tjhandle h = tjInitDecompress();
  TjDecoder() { OSPREY_CHECK(h, "libjpeg-turbo: cannot create a decompressor"); }
  ~TjDecoder() { tjDestroy(h); }
  TjDecoder(const TjDecoder&) = delete;
  TjDecoder& operator=(const TjDecoder&) = delete;
};

struct JpegHeader {
  int h = 0, w = 0, colorspace = 0;
};

JpegHeader read_header(const TjDecoder& d, const uint8_t* p, size_t n, const std::string& name) {
  JpegHeader hd;
  int subsamp = 0;
  if (tjDecompressHeader3(d.h, p, static_cast<unsigned long>(n), &hd.w, &hd.h, &subsamp,
                          &hd.colorspace) != 0)
    fail("image ", name, ": not a readable JPEG (", tjGetErrorStr2(d.h), ")");
  // TurboJPEG 2.1 reports success, with a size of 0, for a file that ends inside its header.
  OSPREY_CHECK(hd.h >= 1 && hd.w >= 1, "image ", name,
               ": not a readable JPEG (it ends before its frame header)");
  return hd;
}

bool is_cmyk(int colorspace) {
  return colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
}

// x * y / 255, rounded: stb_image's CMYK -> RGB for Adobe's inverted CMYK, which
// libjpeg hands over as stored (YCCK already turned into that CMYK).
uint8_t times(unsigned x, unsigned y) {
  const unsigned t = x * y + 128;
  return uint8_t((t + (t >> 8)) >> 8);
}

}  // namespace

bool is_jpeg(const uint8_t* p, size_t n) {
  return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
}

Image jpeg_header(const uint8_t* p, size_t n, const std::string& name) {
  TjDecoder d;
  const JpegHeader hd = read_header(d, p, n, name);
  return Image{hd.h, hd.w, hd.colorspace == TJCS_GRAY ? 1 : 3, {}};
}

Image jpeg_decode(const uint8_t* p, size_t n, const std::string& name, size_t max_pixels) {
  TjDecoder d;
  const JpegHeader hd = read_header(d, p, n, name);
  const int pf = hd.colorspace == TJCS_GRAY ? TJPF_GRAY
                 : is_cmyk(hd.colorspace)   ? TJPF_CMYK
                                            : TJPF_RGB;
  std::vector<uint8_t> px(checked_image_bytes(hd.h, hd.w, tjPixelSize[pf], max_pixels, name));
  // libjpeg-turbo fills missing or corrupt scan data with gray and only warns; TurboJPEG still
  // returns -1 for a warning (TJERR_WARNING), and any -1 is refused here. STOPONWARNING stops
  // at the first warning instead of decoding the rest; LIMITSCANS refuses progressive files
  // with an absurd number of scans (a CPU-time bomb).
  if (tjDecompress2(d.h, p, static_cast<unsigned long>(n), px.data(), hd.w, 0, hd.h, pf,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
    fail("image ", name, ": corrupt or truncated JPEG (", tjGetErrorStr2(d.h), ")");
  Image out{hd.h, hd.w, pf == TJPF_GRAY ? 1 : 3, {}};
  if (pf != TJPF_CMYK) {
    out.pixels = std::move(px);
    return out;
  }
  const size_t count = size_t(hd.h) * size_t(hd.w);
  out.pixels.resize(count * 3);
  for (size_t i = 0; i < count; ++i)
    for (int ch = 0; ch < 3; ++ch) out.pixels[3 * i + ch] = times(px[4 * i + ch], px[4 * i + 3]);
  return out;
}

}  // namespace osprey::data::detail
