#include "kernels/cpu/conv.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace osprey::cpu {

namespace {

// Upper bound on the im2col buffer; the batch is processed in chunks of whole images so that
// memory stays flat whatever the batch size.
constexpr int64_t kColBudgetFloats = (int64_t{32} << 20) / sizeof(float);

// The default build targets baseline x86-64; the compute-bound direct loops get AVX2 and
// AVX-512 clones chosen at load time, so a portable binary still runs them at full width.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define OSPREY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OSPREY_CLONES
#endif

// Grow-only per-thread scratch: steady-state training steps allocate nothing. Slot 0 holds
// im2col matrices, slot 1 small transposed weights.
float* scratch(int64_t floats, int slot = 0) {
  thread_local std::vector<float> buf[2];
  if (static_cast<int64_t>(buf[slot].size()) < floats) buf[slot].resize(floats);
  return buf[slot].data();
}

// Few input channels (RGB or grey stems): a GEMM with an inner dimension of KH*KW*C <= 36
// mostly packs and unpacks, so these convolutions run as direct loops over the output row.
bool use_direct(const Conv2dShape& s) {
  return s.c <= 4;
}

// Below this many floats of work a parallel region's fork/join costs more than it saves (and
// much more when the cores are shared with other processes).
constexpr int64_t kParallelMin = 1 << 15;

struct Geometry {
  int oh, ow;
  int64_t patch;     // KH * KW * C: one im2col row
  int64_t img_rows;  // OH * OW
  int64_t img_in;    // H * W * C
  bool pointwise;    // 1x1, stride 1, no padding: x already is the im2col matrix
};

Geometry geometry(const Conv2dShape& s) {
  Geometry g;
  g.oh = s.oh();
  g.ow = s.ow();
  g.patch = static_cast<int64_t>(s.kh) * s.kw * s.c;
  g.img_rows = static_cast<int64_t>(g.oh) * g.ow;
  g.img_in = static_cast<int64_t>(s.h) * s.w * s.c;
  g.pointwise = s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0;
  return g;
}

int images_per_chunk(const Conv2dShape& s, const Geometry& g) {
  const int64_t per_image = std::max<int64_t>(1, g.img_rows * g.patch);
  return static_cast<int>(std::clamp<int64_t>(kColBudgetFloats / per_image, 1, s.n));
}

// Valid kernel columns [j_lo, j_hi) for an output column whose window starts at input column
// iw0. Consecutive kernel columns hit consecutive NHWC pixels, so each kernel row of a patch is
// one contiguous run of (j_hi - j_lo) * C floats.
inline void column_span(const Conv2dShape& s, int iw0, int& j_lo, int& j_hi) {
  j_lo = std::max(0, -iw0);
  j_hi = std::max(j_lo, std::min(s.kw, s.w - iw0));
}

// col[(img * OH + oh) * OW + ow][(i * KW + j) * C + c] = x[img][oh*S - P + i][ow*S - P + j][c].
void im2col(const Conv2dShape& s, const Geometry& g, const float* x, int images, float* col) {
  const int c = s.c;
  const int64_t run = static_cast<int64_t>(s.kw) * c;
#pragma omp parallel for schedule(static) if (images * g.img_rows * g.patch > kParallelMin)
  for (int64_t r = 0; r < static_cast<int64_t>(images) * g.oh; ++r) {
    const int img = static_cast<int>(r / g.oh), oh = static_cast<int>(r % g.oh);
    const float* xi = x + img * g.img_in;
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
        for (int64_t t = 0; t < static_cast<int64_t>(j_lo) * c; ++t) d[t] = 0.0f;
        for (int64_t t = static_cast<int64_t>(j_lo) * c; t < static_cast<int64_t>(j_hi) * c; ++t)
          d[t] = src[t];
        for (int64_t t = static_cast<int64_t>(j_hi) * c; t < run; ++t) d[t] = 0.0f;
      }
    }
  }
}

// Adjoint of im2col: dx is overwritten with the scatter-add of dcol. Images are independent, so
// one thread per image never races.
void col2im(const Conv2dShape& s, const Geometry& g, const float* dcol, int images, float* dx) {
  const int c = s.c;
  const int64_t run = static_cast<int64_t>(s.kw) * c;
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
          for (int64_t t = static_cast<int64_t>(j_lo) * c; t < static_cast<int64_t>(j_hi) * c; ++t)
            d[t] += sr[t];
        }
      }
    }
  }
}

// One output row of the direct forward: every output pixel's K accumulators stay in L1 while
// the taps stream by; wt is the weight transposed to [tap][K] so the K loop is contiguous.
OSPREY_CLONES void direct_forward_row(const Conv2dShape& s, const float* xi, const float* wt,
                                      const float* bias, int oh, int ow_count, float* y) {
  const int c = s.c, k_count = s.k;
  for (int ow = 0; ow < ow_count; ++ow, y += k_count) {
    if (bias) {
      for (int k = 0; k < k_count; ++k) y[k] = bias[k];
    } else {
      for (int k = 0; k < k_count; ++k) y[k] = 0.0f;
    }
    const int iw0 = ow * s.stride - s.pad;
    int j_lo, j_hi;
    column_span(s, iw0, j_lo, j_hi);
    for (int i = 0; i < s.kh; ++i) {
      const int ih = oh * s.stride - s.pad + i;
      if (ih < 0 || ih >= s.h) continue;
      const float* src = xi + (static_cast<int64_t>(ih) * s.w + iw0) * c;
      const float* wrow = wt + static_cast<int64_t>(i) * s.kw * c * k_count;
      for (int t = j_lo * c; t < j_hi * c; ++t) {
        const float xv = src[t];
        const float* wk = wrow + static_cast<int64_t>(t) * k_count;
        for (int k = 0; k < k_count; ++k) y[k] += xv * wk[k];
      }
    }
  }
}

// One output row's contribution to the weight gradient (as [tap][K]) and the bias gradient.
OSPREY_CLONES void direct_backward_row(const Conv2dShape& s, const float* xi, const float* dy,
                                       int oh, int ow_count, float* dwt, float* dbt) {
  const int c = s.c, k_count = s.k;
  for (int ow = 0; ow < ow_count; ++ow, dy += k_count) {
    for (int k = 0; k < k_count; ++k) dbt[k] += dy[k];
    const int iw0 = ow * s.stride - s.pad;
    int j_lo, j_hi;
    column_span(s, iw0, j_lo, j_hi);
    for (int i = 0; i < s.kh; ++i) {
      const int ih = oh * s.stride - s.pad + i;
      if (ih < 0 || ih >= s.h) continue;
      const float* src = xi + (static_cast<int64_t>(ih) * s.w + iw0) * c;
      float* drow = dwt + static_cast<int64_t>(i) * s.kw * c * k_count;
      for (int t = j_lo * c; t < j_hi * c; ++t) {
        const float xv = src[t];
        float* dk = drow + static_cast<int64_t>(t) * k_count;
        for (int k = 0; k < k_count; ++k) dk[k] += xv * dy[k];
      }
    }
  }
}

void direct_forward(const Conv2dShape& s, const Geometry& g, const float* x, const float* w,
                    const float* bias, float* y) {
  float* wt = scratch(g.patch * s.k, 1);
  for (int k = 0; k < s.k; ++k)
    for (int64_t t = 0; t < g.patch; ++t) wt[t * s.k + k] = w[k * g.patch + t];
#pragma omp parallel for schedule(static) if (s.n * g.img_rows * g.patch * s.k > kParallelMin)
  for (int64_t r = 0; r < static_cast<int64_t>(s.n) * g.oh; ++r) {
    const int img = static_cast<int>(r / g.oh), oh = static_cast<int>(r % g.oh);
    direct_forward_row(s, x + img * g.img_in, wt, bias, oh, g.ow, y + r * g.ow * s.k);
  }
}

// Rows are summed in float (short sums), then folded into per-thread double totals so long
// batches do not drift.
void direct_backward_params(const Conv2dShape& s, const Geometry& g, const float* x,
                            const float* dy, float* dw, float* db) {
  const int64_t nw = g.patch * s.k;
#pragma omp parallel if (s.n * g.img_rows * nw > kParallelMin)
  {
    thread_local std::vector<double> total;
    thread_local std::vector<float> row;
    total.assign(nw + s.k, 0.0);
    row.resize(nw + s.k);
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < static_cast<int64_t>(s.n) * g.oh; ++r) {
      const int img = static_cast<int>(r / g.oh), oh = static_cast<int>(r % g.oh);
      std::fill(row.begin(), row.end(), 0.0f);
      direct_backward_row(s, x + img * g.img_in, dy + r * g.ow * s.k, oh, g.ow, row.data(),
                          row.data() + nw);
      for (int64_t t = 0; t < nw + s.k; ++t) total[t] += row[t];
    }
#pragma omp critical
    {
      if (dw)
        for (int k = 0; k < s.k; ++k)
          for (int64_t t = 0; t < g.patch; ++t)
            dw[k * g.patch + t] += static_cast<float>(total[t * s.k + k]);
      if (db)
        for (int k = 0; k < s.k; ++k) db[k] += static_cast<float>(total[nw + k]);
    }
  }
}

// db[k] += sum over rows of dy[row][k], with per-thread double partials (see gemm.cpp).
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

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  const Geometry g = geometry(s);
  if (s.n <= 0 || s.k <= 0 || g.oh <= 0 || g.ow <= 0) return;
  if (use_direct(s) && g.patch > 0) {
    direct_forward(s, g, x, w, bias, y);
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  float beta = 0.0f;
  if (bias) {
    // The GEMM accumulates onto the bias (beta = 1) instead of a separate bias pass afterwards.
#pragma omp parallel for schedule(static) if (rows * s.k > kParallelMin)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(y + r * s.k, bias, static_cast<size_t>(s.k) * sizeof(float));
    beta = 1.0f;
  } else if (g.patch == 0) {
    std::memset(y, 0, static_cast<size_t>(rows * s.k) * sizeof(float));
  }
  if (g.pointwise) {
    gemm(false, true, rows, s.k, s.c, x, s.c, w, s.c, beta, y, s.k);
    return;
  }
  const int chunk = images_per_chunk(s, g);
  float* col = scratch(chunk * g.img_rows * g.patch);
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int nb = std::min(chunk, s.n - n0);
    im2col(s, g, x + n0 * g.img_in, nb, col);
    gemm(false, true, nb * g.img_rows, s.k, g.patch, col, g.patch, w, g.patch, beta,
         y + n0 * g.img_rows * s.k, s.k);
  }
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  const Geometry g = geometry(s);
  if (s.n <= 0) return;
  if (s.k <= 0 || g.oh <= 0 || g.ow <= 0 || g.patch == 0) {
    if (dx) std::memset(dx, 0, static_cast<size_t>(s.n * g.img_in) * sizeof(float));
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  if (use_direct(s) && (dw || db)) {
    direct_backward_params(s, g, x, dy, dw, db);
    dw = db = nullptr;
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
  float* col = scratch(chunk * g.img_rows * g.patch);
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

}  // namespace osprey::cpu
