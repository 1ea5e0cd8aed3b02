// The double-precision reference convolution shared by the dense-convolution tests
// (test_kernels_conv.cpp: our kernels; test_kernels_conv_onednn.cpp: the oneDNN path).
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/conv.h"

namespace osprey_test {

using osprey::Conv2dShape;

inline Conv2dShape make(int n, int h, int w, int c, int k, int kh, int kw, int stride, int pad) {
  Conv2dShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.k = k, s.kh = kh, s.kw = kw, s.stride = stride, s.pad = pad;
  return s;
}

inline size_t x_size(const Conv2dShape& s) {
  return size_t(s.n) * s.h * s.w * s.c;
}
inline size_t w_size(const Conv2dShape& s) {
  return size_t(s.k) * s.kh * s.kw * s.c;
}
inline size_t y_size(const Conv2dShape& s) {
  return size_t(s.n) * s.oh() * s.ow() * s.k;
}

// Direct convolution: every output sums over its window, skipping taps in the padding.
inline std::vector<double> ref_forward(const Conv2dShape& s, const std::vector<double>& x,
                                       const std::vector<double>& w, const std::vector<double>* b) {
  const int oh = s.oh(), ow = s.ow();
  std::vector<double> y(y_size(s));
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < oh; ++p)
      for (int q = 0; q < ow; ++q)
        for (int k = 0; k < s.k; ++k) {
          double acc = b ? (*b)[k] : 0.0;
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = p * s.stride - s.pad + i, iw = q * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              for (int c = 0; c < s.c; ++c)
                acc += x[((size_t(n) * s.h + ih) * s.w + iw) * s.c + c] *
                       w[((size_t(k) * s.kh + i) * s.kw + j) * s.c + c];
            }
          y[((size_t(n) * oh + p) * ow + q) * s.k + k] = acc;
        }
  return y;
}

// Analytic gradients by the same direct loops, for shapes too large for finite differences.
inline void ref_backward(const Conv2dShape& s, const std::vector<double>& x,
                         const std::vector<double>& w, const std::vector<double>& dy,
                         std::vector<double>& dx, std::vector<double>& dw,
                         std::vector<double>& db) {
  const int oh = s.oh(), ow = s.ow();
  dx.assign(x_size(s), 0.0), dw.assign(w_size(s), 0.0), db.assign(s.k, 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < oh; ++p)
      for (int q = 0; q < ow; ++q)
        for (int k = 0; k < s.k; ++k) {
          const double g = dy[((size_t(n) * oh + p) * ow + q) * s.k + k];
          db[k] += g;
          for (int i = 0; i < s.kh; ++i)
            for (int j = 0; j < s.kw; ++j) {
              const int ih = p * s.stride - s.pad + i, iw = q * s.stride - s.pad + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              for (int c = 0; c < s.c; ++c) {
                const size_t xi = ((size_t(n) * s.h + ih) * s.w + iw) * s.c + c;
                const size_t wi = ((size_t(k) * s.kh + i) * s.kw + j) * s.c + c;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
        }
}

inline std::string name(const Conv2dShape& s) {
  std::ostringstream o;
  o << "n" << s.n << " " << s.h << "x" << s.w << "x" << s.c << " k" << s.k << " " << s.kh << "x"
    << s.kw << " s" << s.stride << " p" << s.pad;
  return o.str();
}

}  // namespace osprey_test
