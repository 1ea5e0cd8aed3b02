#include "kernels/cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_detail.h"
#include "kernels/cpu/conv_onednn.h"
#include "kernels/cpu/gemm.h"

namespace osprey::cpu {

namespace {

using namespace conv_detail;

// Upper bound on the im2col buffer of the GEMM path; the batch is processed in chunks of whole
// images so that memory stays flat whatever the batch size.
constexpr int64_t kColBudgetFloats = (int64_t{32} << 20) / sizeof(float);

int images_per_chunk(const Conv2dShape& s, const Geometry& g) {
  const int64_t per_image = std::max<int64_t>(1, g.img_rows * g.patch);
  return static_cast<int>(std::clamp<int64_t>(kColBudgetFloats / per_image, 1, s.n));
}

// ---- GEMM path: im2col, one SGEMM per chunk of images, col2im -------------------------------

// Valid kernel columns [j_lo, j_hi) for an output column whose window starts at input column
// iw0. Consecutive kernel columns hit consecutive NHWC pixels, so each kernel row of a patch is
// one contiguous run of (j_hi - j_lo) * C floats.
inline void column_span(const Conv2dShape& s, int iw0, int& j_lo, int& j_hi) {
  j_lo = std::max(0, -iw0);
  j_hi = std::max(j_lo, std::min(s.kw, s.w - iw0));
}

// col[(img * OH + oh) * OW + ow][(i * KW + j) * C + c] = x[img][oh*S - P + i][ow*S - P + j][c],
// zero where the window hangs over the padding.
void im2col(const Conv2dShape& s, const Geometry& g, const float* x, int images, float* col) {
  const int64_t c = s.c, run = s.kw * c;
#pragma omp parallel for schedule(static) if (images * g.img_rows * g.patch > kParallelMin)
  for (int64_t r = 0; r < static_cast<int64_t>(images) * g.oh; ++r) {
    const int oh = static_cast<int>(r % g.oh);
    const float* xi = x + (r / g.oh) * g.img_in;
    float* dst = col + r * g.ow * g.patch;
    for (int ow = 0; ow < g.ow; ++ow, dst += g.patch) {
      const int iw0 = ow * s.stride - s.pad;
      int j_lo, j_hi;
      column_span(s, iw0, j_lo, j_hi);
      for (int i = 0; i < s.kh; ++i) {
        float* d = dst + i * run;
        const int ih = oh * s.stride - s.pad + i;
        if (ih < 0 || ih >= s.h) {
          std::memset(d, 0, run * sizeof(float));
          continue;
        }
        const float* src = xi + (static_cast<int64_t>(ih) * s.w + iw0) * c;
        for (int64_t t = 0; t < j_lo * c; ++t) d[t] = 0.0f;
        for (int64_t t = j_lo * c; t < j_hi * c; ++t) d[t] = src[t];
        for (int64_t t = j_hi * c; t < run; ++t) d[t] = 0.0f;
      }
    }
  }
}

// Adjoint of im2col: dx is overwritten with the scatter-add of dcol. Images are independent, so
// one thread per image never races.
void col2im(const Conv2dShape& s, const Geometry& g, const float* dcol, int images, float* dx) {
  const int64_t c = s.c, run = s.kw * c;
#pragma omp parallel for schedule(static) if (images * g.img_rows * g.patch > kParallelMin)
  for (int img = 0; img < images; ++img) {
    float* xi = dx + img * g.img_in;
    std::memset(xi, 0, g.img_in * sizeof(float));
    const float* src = dcol + img * g.img_rows * g.patch;
    for (int oh = 0; oh < g.oh; ++oh) {
      for (int ow = 0; ow < g.ow; ++ow, src += g.patch) {
        const int iw0 = ow * s.stride - s.pad;
        int j_lo, j_hi;
        column_span(s, iw0, j_lo, j_hi);
        for (int i = 0; i < s.kh; ++i) {
          const int ih = oh * s.stride - s.pad + i;
          if (ih < 0 || ih >= s.h) continue;
          float* d = xi + (static_cast<int64_t>(ih) * s.w + iw0) * c;
          const float* sr = src + i * run;
          for (int64_t t = j_lo * c; t < j_hi * c; ++t) d[t] += sr[t];
        }
      }
    }
  }
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  sgemm(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a,
        static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// db[k] += sum over rows of dy[row][k], with per-thread double partials.
void add_column_sums(int64_t rows, int cols, const float* a, float* out) {
  if (rows <= 0 || cols <= 0) return;
#pragma omp parallel if (rows * cols > kParallelMin)
  {
    thread_local std::vector<double> local;
    local.assign(cols, 0.0);
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = a + r * cols;
      for (int k = 0; k < cols; ++k) local[k] += row[k];
    }
#pragma omp critical
    for (int k = 0; k < cols; ++k) out[k] += static_cast<float>(local[k]);
  }
}

}  // namespace

namespace conv_detail {

void own_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                 float* y) {
  const Geometry g = geometry(s);
  if (s.n <= 0 || s.k <= 0 || g.oh <= 0 || g.ow <= 0) return;
  if (g.direct) {
    direct_forward(s, g, x, w, bias, y);
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  float beta = 0.0f;
  if (bias) {
    // The GEMM accumulates onto the bias (beta = 1) instead of a separate bias pass afterwards.
#pragma omp parallel for schedule(static) if (rows * s.k > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * s.k, bias, s.k * sizeof(float));
    beta = 1.0f;
  } else if (g.patch == 0) {
    std::memset(y, 0, rows * s.k * sizeof(float));
  }
  if (g.pointwise) {
    gemm(false, true, rows, s.k, s.c, x, s.c, w, s.c, beta, y, s.k);
    return;
  }
  const int chunk = images_per_chunk(s, g);
  float* col = scratch(chunk * g.img_rows * g.patch, 0);
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int nb = std::min(chunk, s.n - n0);
    im2col(s, g, x + n0 * g.img_in, nb, col);
    gemm(false, true, nb * g.img_rows, s.k, g.patch, col, g.patch, w, g.patch, beta,
         y + n0 * g.img_rows * s.k, s.k);
  }
}

void own_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx,
                  float* dw, float* db) {
  const Geometry g = geometry(s);
  if (s.n <= 0) return;
  if (s.k <= 0 || g.oh <= 0 || g.ow <= 0 || g.patch == 0) {
    if (dx) std::memset(dx, 0, s.n * g.img_in * sizeof(float));
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  if (g.direct && (dw || db)) {
    direct_backward_params(s, g, x, dy, dw, db);
    dw = db = nullptr;
  }
  if (g.direct_dx && dx) {
    direct_backward_data(s, g, w, dy, dx);
    dx = nullptr;
  }
  if (db) add_column_sums(rows, s.k, dy, db);
  if (g.pointwise) {
    if (dw) gemm(true, false, s.k, s.c, rows, dy, s.k, x, s.c, 1.0f, dw, s.c);
    if (dx) gemm(false, false, rows, s.c, s.k, dy, s.k, w, s.c, 0.0f, dx, s.c);
    return;
  }
  if (!dw && !dx) return;
  const int chunk = images_per_chunk(s, g);
  // One buffer serves both: the weight gradient consumes col before dcol overwrites it.
  float* col = scratch(chunk * g.img_rows * g.patch, 0);
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int nb = std::min(chunk, s.n - n0);
    const int64_t m = nb * g.img_rows;
    const float* dyc = dy + n0 * g.img_rows * s.k;
    if (dw) {
      im2col(s, g, x + n0 * g.img_in, nb, col);
      gemm(true, false, s.k, g.patch, m, dyc, s.k, col, g.patch, 1.0f, dw, g.patch);
    }
    if (dx) {
      gemm(false, false, m, g.patch, s.k, dyc, s.k, w, g.patch, 0.0f, col, g.patch);
      col2im(s, g, col, nb, dx + n0 * g.img_in);
    }
  }
}

void bias_gradient(const Conv2dShape& s, const float* dy, float* db) {
  add_column_sums(int64_t{s.n} * s.oh() * s.ow(), s.k, dy, db);
}

}  // namespace conv_detail

// Measured with `osprey bench conv --threads 2` (2 cores of the AVX-512 development machine;
// best of 10-20 alternating runs; ms forward / dx / dw, ours against oneDNN's primitives cached
// per shape, with our weights reordered into their format and dw back each call):
//  * 3x3, stride 1, pad 1, C >= 8: oneDNN wins every pass. simple_cnn conv2 (batch 64,
//    14x14x32 -> 64): 1.20 / 1.37 / 1.51 against 0.94 / 1.00 / 0.95, 1.41x on the shape; also
//    28x28x32 -> 32 (1.36x), 7x7x64 -> 64, 14x14x16 -> 32, 14x14x8 -> 16, 16x16x64 -> 128 and
//    14x14x32 -> 64 at batches 1 and 8 (1.28x to 1.78x).
//  * The same with C <= 3 (stems): dw only. mobilenet_v2_cifar's stem (32x32x3 -> 32): 0.56
//    against 0.32, 1.38x on the shape; simple_cnn conv1 (28x28x1 -> 32): 0.30 against 0.25 with
//    db, 1.13x (oneDNN's dw alone takes 0.12). db stays our column sum of dY: oneDNN's bias
//    gradient would take 0.52 there. The stems' forward ties or is ours (0.29 / 0.30, 0.11 /
//    0.15), and oneDNN's dx takes 2x to 2.6x ours (a stem never needs it).
//  * Nothing else in the models wins clearly: the 224x224 stem (3x3 stride 2, batch 16) ties
//    (3.22 / 3.23), and the 1x1 convolutions (the GEMM path) are 0.74x to 1.14x, but for the two
//    at 112x112 in mobilenet_v2 (32 -> 16, 16 -> 96): 1.0x to 1.36x from one session to the
//    next, run ratios 1.04 to 1.37. Not a margin to build on.
// Shapes not measured stay ours.
bool onednn_conv_faster(const Conv2dShape& s, ConvPass pass) {
  if (s.n <= 0 || s.c <= 0 || s.k <= 0 || s.oh() <= 0 || s.ow() <= 0) return false;
  if (s.kh != 3 || s.kw != 3 || s.stride != 1 || s.pad != 1) return false;
  return s.c >= 8 || (s.c <= 3 && pass == ConvPass::weights);
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  if (onednn_conv_faster(s, ConvPass::forward))
    onednn_conv2d_forward(s, x, w, bias, y);
  else
    conv_detail::own_forward(s, x, w, bias, y);
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  if (dx && onednn_conv_faster(s, ConvPass::data)) {
    onednn_conv2d_backward(s, x, w, dy, dx, nullptr);
    dx = nullptr;
  }
  // db by one route whether or not dw is asked for, so that it does not change with it.
  if ((dw || db) && onednn_conv_faster(s, ConvPass::weights)) {
    if (dw) onednn_conv2d_backward(s, x, w, dy, nullptr, dw);
    if (db) conv_detail::bias_gradient(s, dy, db);
    dw = db = nullptr;
  }
  if (dx || dw || db) conv_detail::own_backward(s, x, w, dy, dx, dw, db);
}

}  // namespace osprey::cpu
