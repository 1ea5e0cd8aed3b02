#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace osprey::data::tf {
namespace {

inline float clamp01(float v) {
  return std::min(1.0f, std::max(0.0f, v));
}

// One output coordinate's source taps along an axis, PyTorch's upsample_bilinear2d rule (float
// arithmetic like its CPU kernel, so values match it closely).
struct Tap {
  int i0, i1;
  float l0, l1;
};

void make_taps(int in, int out, std::vector<Tap>& taps) {
  taps.resize(size_t(out));
  const float scale = float(in) / float(out);
  for (int o = 0; o < out; ++o) {
    float src = std::max(0.0f, (float(o) + 0.5f) * scale - 0.5f);
    int i0 = std::min(int(src), in - 1);
    int i1 = i0 + (i0 < in - 1 ? 1 : 0);
    float l1 = src - float(i0);
    taps[size_t(o)] = {i0, i1, 1.0f - l1, l1};
  }
}

inline float gray(const float* p) {
  return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

// torchvision's _rgb2hsv / _hsv2rgb, per pixel.
void rgb_to_hsv(const float* p, float& h, float& s, float& v) {
  const float r = p[0], g = p[1], b = p[2];
  const float maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  const bool eqc = maxc == minc;
  const float cr = maxc - minc;
  s = cr / (eqc ? 1.0f : maxc);
  const float div = eqc ? 1.0f : cr;
  const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  float hh;
  if (maxc == r)
    hh = bc - gc;
  else if (maxc == g)
    hh = 2.0f + rc - bc;
  else
    hh = 4.0f + gc - rc;
  const float h1 = hh / 6.0f + 1.0f;  // in [0, 2): x - floor(x) is fmod(x, 1), exactly
  h = h1 - std::floor(h1);
  v = maxc;
}

void hsv_to_rgb(float h, float s, float v, float* p) {
  const float h6 = h * 6.0f;
  const float fi = std::floor(h6);
  const float f = h6 - fi;
  int i = int(fi);  // h is in [0, 1), so i is 0..6 (6 only by rounding)
  if (i >= 6) i -= 6;
  const float pp = clamp01(v * (1.0f - s));
  const float q = clamp01(v * (1.0f - s * f));
  const float t = clamp01(v * (1.0f - s * (1.0f - f)));
  const float r[6] = {v, q, pp, pp, t, v};
  const float g[6] = {t, v, v, q, pp, pp};
  const float b[6] = {pp, pp, t, v, v, q};
  p[0] = r[i];
  p[1] = g[i];
  p[2] = b[i];
}

}  // namespace

void resized_crop_bilinear(const float* in, int h, int w, int c, int top, int left, int ch, int cw,
                           float* out, int oh, int ow) {
  // Per-thread tables: this runs once per sample on the loader's OpenMP team.
  thread_local std::vector<Tap> ty, tx;
  make_taps(ch, oh, ty);
  make_taps(cw, ow, tx);
  const int64_t row = int64_t(w) * c;
  for (int y = 0; y < oh; ++y) {
    const Tap& a = ty[size_t(y)];
    const float* r0 = in + (top + a.i0) * row + int64_t(left) * c;
    const float* r1 = in + (top + a.i1) * row + int64_t(left) * c;
    float* dst = out + int64_t(y) * ow * c;
    for (int x = 0; x < ow; ++x) {
      const Tap& b = tx[size_t(x)];
      const float* p00 = r0 + b.i0 * c;
      const float* p01 = r0 + b.i1 * c;
      const float* p10 = r1 + b.i0 * c;
      const float* p11 = r1 + b.i1 * c;
      for (int k = 0; k < c; ++k)
        dst[k] = a.l0 * (b.l0 * p00[k] + b.l1 * p01[k]) + a.l1 * (b.l0 * p10[k] + b.l1 * p11[k]);
      dst += c;
    }
  }
}

void resize_bilinear(const float* in, int h, int w, int c, float* out, int oh, int ow) {
  resized_crop_bilinear(in, h, w, c, 0, 0, h, w, out, oh, ow);
}

CropBox random_resized_crop_box(int h, int w, const double scale[2], const double ratio[2],
                                const std::function<double()>& uniform01) {
  const double area = double(h) * w;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (scale[0] + (scale[1] - scale[0]) * uniform01());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * uniform01());
    const int cw = int(std::nearbyint(std::sqrt(target * aspect)));
    const int ch = int(std::nearbyint(std::sqrt(target / aspect)));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      CropBox box{0, 0, ch, cw};
      box.top = std::min(h - ch, int(uniform01() * (h - ch + 1)));
      box.left = std::min(w - cw, int(uniform01() * (w - cw + 1)));
      return box;
    }
  }
  const double in_ratio = double(w) / h;
  CropBox box{0, 0, h, w};
  if (in_ratio < ratio[0]) {
    box.height = std::min(h, int(std::nearbyint(w / ratio[0])));
  } else if (in_ratio > ratio[1]) {
    box.width = std::min(w, int(std::nearbyint(h * ratio[1])));
  }
  box.top = (h - box.height) / 2;
  box.left = (w - box.width) / 2;
  return box;
}

CropBox center_crop_box(int h, int w, int oh, int ow) {
  CropBox box{0, 0, oh, ow};
  box.top = int(std::nearbyint((h - oh) / 2.0));
  box.left = int(std::nearbyint((w - ow) / 2.0));
  return box;
}

void hflip(const float* in, int h, int w, int c, float* out) {
  for (int y = 0; y < h; ++y) {
    const float* src = in + int64_t(y) * w * c;
    float* dst = out + int64_t(y) * w * c;
    for (int x = 0; x < w; ++x)
      std::copy(src + int64_t(w - 1 - x) * c, src + int64_t(w - x) * c, dst + int64_t(x) * c);
  }
}

void pad_crop(const float* in, int h, int w, int c, int pad, float fill, int top, int left,
              float* out, int oh, int ow) {
  for (int y = 0; y < oh; ++y) {
    const int sy = top + y - pad;
    float* dst = out + int64_t(y) * ow * c;
    if (sy < 0 || sy >= h) {
      std::fill(dst, dst + int64_t(ow) * c, fill);
      continue;
    }
    // Columns [x0, x1) of the output come from the image; the rest is padding.
    const int x0 = std::clamp(pad - left, 0, ow), x1 = std::clamp(pad - left + w, x0, ow);
    std::fill(dst, dst + int64_t(x0) * c, fill);
    const float* src = in + (int64_t(sy) * w + (left + x0 - pad)) * c;
    std::copy(src, src + int64_t(x1 - x0) * c, dst + int64_t(x0) * c);
    std::fill(dst + int64_t(x1) * c, dst + int64_t(ow) * c, fill);
  }
}

void adjust_brightness(float* img, int64_t n, int c, float factor) {
  for (int64_t i = 0; i < n * c; ++i) img[i] = clamp01(img[i] * factor);
}

void adjust_contrast(float* img, int64_t n, int c, float factor) {
  double sum = 0.0;  // double: a 224x224 sum in float loses the low bits that matter here
  if (c == 3)
    for (int64_t i = 0; i < n; ++i) sum += gray(img + 3 * i);
  else
    for (int64_t i = 0; i < n * c; ++i) sum += img[i];
  const float mean = n > 0 ? float(sum / double(n * (c == 3 ? 1 : c))) : 0.0f;
  const float base = (1.0f - factor) * mean;
  for (int64_t i = 0; i < n * c; ++i) img[i] = clamp01(factor * img[i] + base);
}

void adjust_saturation(float* img, int64_t n, int c, float factor) {
  if (c != 3) return;  // torchvision leaves a single channel unchanged
  for (int64_t i = 0; i < n; ++i) {
    float* p = img + 3 * i;
    const float base = (1.0f - factor) * gray(p);
    for (int k = 0; k < 3; ++k) p[k] = clamp01(factor * p[k] + base);
  }
}

void adjust_hue(float* img, int64_t n, int c, float shift) {
  if (c != 3) return;
  for (int64_t i = 0; i < n; ++i) {
    float* p = img + 3 * i;
    float h, s, v;
    rgb_to_hsv(p, h, s, v);
    h = h + shift;
    h -= std::floor(h);  // Python's % 1.0: the result is in [0, 1) for negative shifts too
    hsv_to_rgb(h, s, v, p);
  }
}

void rotation_cos_sin(double degrees, double& cos_a, double& sin_a) {
  constexpr double kPi = 3.14159265358979323846;
  const double a = degrees * kPi / 180.0;
  cos_a = std::cos(a);
  sin_a = std::sin(a);
}

void rotate(const float* in, int h, int w, int c, double degrees, float fill, bool bilinear,
            float* out) {
  double ca, sa;
  rotation_cos_sin(degrees, ca, sa);
  const double cx = 0.5 * w, cy = 0.5 * h;
  for (int y = 0; y < h; ++y) {
    const double yc = y + 0.5 - cy;
    for (int x = 0; x < w; ++x) {
      const double xc = x + 0.5 - cx;
      // Inverse map: the source of output (x, y), in pixel-index coordinates.
      const double ix = ca * xc - sa * yc + cx - 0.5;
      const double iy = sa * xc + ca * yc + cy - 0.5;
      float* dst = out + (int64_t(y) * w + x) * c;
      if (!bilinear) {
        const int sx = int(std::nearbyint(ix)), sy = int(std::nearbyint(iy));
        if (sx >= 0 && sx < w && sy >= 0 && sy < h)
          std::copy(in + (int64_t(sy) * w + sx) * c, in + (int64_t(sy) * w + sx + 1) * c, dst);
        else
          std::fill(dst, dst + c, fill);
        continue;
      }
      const double fx0 = std::floor(ix), fy0 = std::floor(iy);
      const int x0 = int(fx0), y0 = int(fy0);
      const float lx = float(ix - fx0), ly = float(iy - fy0);
      if (x0 >= 0 && x0 + 1 < w && y0 >= 0 && y0 + 1 < h) {  // all four taps inside: m = 1
        const float* p0 = in + (int64_t(y0) * w + x0) * c;
        const float* p1 = p0 + int64_t(w) * c;
        for (int k = 0; k < c; ++k)
          dst[k] = (1 - ly) * ((1 - lx) * p0[k] + lx * p0[c + k]) +
                   ly * ((1 - lx) * p1[k] + lx * p1[c + k]);
        continue;
      }
      const float wts[4] = {(1 - lx) * (1 - ly), lx * (1 - ly), (1 - lx) * ly, lx * ly};
      const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      std::fill(dst, dst + c, 0.0f);
      float m = 0.0f;
      for (int t = 0; t < 4; ++t) {
        if (xs[t] < 0 || xs[t] >= w || ys[t] < 0 || ys[t] >= h) continue;
        const float* p = in + (int64_t(ys[t]) * w + xs[t]) * c;
        for (int k = 0; k < c; ++k) dst[k] += wts[t] * p[k];
        m += wts[t];
      }
      for (int k = 0; k < c; ++k) dst[k] = dst[k] * m + (1.0f - m) * fill;
    }
  }
}

void normalize(float* img, int64_t n, int c, const float* mean, const float* std) {
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < c; ++k) img[i * c + k] = (img[i * c + k] - mean[k]) / std[k];
}

}  // namespace osprey::data::tf
