#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream_buffer.cuh"
#include "kernels/cuda/vec.cuh"

namespace osprey::cuda {
namespace {

constexpr int kThreads = 256;

// Upper bound on the im2col buffer; larger batches run in chunks of whole images so that memory
// stays bounded whatever the batch size.
constexpr int64_t kColBudgetFloats = (int64_t{1} << 30) / sizeof(float);

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
  g.patch = int64_t(s.kh) * s.kw * s.c;
  g.img_rows = int64_t(g.oh) * g.ow;
  g.img_in = int64_t(s.h) * s.w * s.c;
  g.pointwise = s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0;
  return g;
}

int images_per_chunk(const Conv2dShape& s, const Geometry& g) {
  const int64_t per_image = std::max<int64_t>(1, g.img_rows * g.patch);
  return int(std::clamp<int64_t>(kColBudgetFloats / per_image, 1, s.n));
}

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

// Geometry as seen by the kernels (passed by value).
struct Dims {
  int h, w, c, kh, kw, stride, pad, oh, ow;
  int64_t patch;
};

Dims dims(const Conv2dShape& s, const Geometry& g) {
  return Dims{s.h, s.w, s.c, s.kh, s.kw, s.stride, s.pad, g.oh, g.ow, g.patch};
}

// col[(img * OH + oh) * OW + ow][(i * KW + j) * C + c] = x[img][oh*S - P + i][ow*S - P + j][c],
// zero over the padding. Consecutive threads walk c, so reads and writes are coalesced.
template <typename T>
__global__ void im2col_kernel(Dims d, int images, const T* __restrict__ x, T* __restrict__ col) {
  const int64_t total = int64_t(images) * d.oh * d.ow * d.patch;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / d.patch;
    const int t = int(e - r * d.patch);
    const int c = t % d.c, tap = t / d.c;
    const int j = tap % d.kw, i = tap / d.kw;
    const int ow = int(r % d.ow);
    const int64_t r2 = r / d.ow;
    const int oh = int(r2 % d.oh);
    const int64_t img = r2 / d.oh;
    const int ih = oh * d.stride - d.pad + i, iw = ow * d.stride - d.pad + j;
    T v{};  // zero in either type
    if (ih >= 0 && ih < d.h && iw >= 0 && iw < d.w) v = x[((img * d.h + ih) * d.w + iw) * d.c + c];
    col[e] = v;
  }
}

// Adjoint of im2col as a gather: each input element sums the column entries that read it, so
// dx is written exactly once with no atomics (and deterministically).
template <typename T>
__global__ void col2im_kernel(Dims d, int images, const float* __restrict__ dcol,
                              T* __restrict__ dx) {
  const int64_t total = int64_t(images) * d.h * d.w * d.c;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int c = int(e % d.c);
    const int64_t p = e / d.c;
    const int iw = int(p % d.w);
    const int64_t p2 = p / d.w;
    const int ih = int(p2 % d.h);
    const int64_t img = p2 / d.h;
    const float* base = dcol + img * d.oh * d.ow * d.patch + c;
    float sum = 0.0f;
    for (int i = 0; i < d.kh; ++i) {
      const int th = ih + d.pad - i;
      if (th < 0) break;  // th only decreases with i
      if (th % d.stride != 0) continue;
      const int oh = th / d.stride;
      if (oh >= d.oh) continue;
      for (int j = 0; j < d.kw; ++j) {
        const int tw = iw + d.pad - j;
        if (tw < 0) break;
        if (tw % d.stride != 0) continue;
        const int ow = tw / d.stride;
        if (ow >= d.ow) continue;
        sum += base[(int64_t(oh) * d.ow + ow) * d.patch + (i * d.kw + j) * d.c];
      }
    }
    vec::store1(dx + e, sum);
  }
}

template <typename T>
void im2col(const Dims& d, int images, const T* x, T* col, cudaStream_t stream) {
  const int64_t total = int64_t(images) * d.oh * d.ow * d.patch;
  if (total <= 0) return;
  im2col_kernel<<<blocks_for(total), kThreads, 0, stream>>>(d, images, x, col);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void col2im(const Dims& d, int images, const float* dcol, T* dx, cudaStream_t stream) {
  const int64_t total = int64_t(images) * d.h * d.w * d.c;
  if (total <= 0) return;
  col2im_kernel<<<blocks_for(total), kThreads, 0, stream>>>(d, images, dcol, dx);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

int checked_int(int64_t v, const char* what) {
  OSPREY_CHECK(v <= INT_MAX, "conv2d: ", what, " exceeds INT_MAX");
  return int(v);
}

// The weights as a bf16 GEMM takes them (a copy per call: small next to the activations).
StreamBuffer<bf16> bf16_weights(const Conv2dShape& s, const float* w, cudaStream_t stream) {
  const int64_t nw = int64_t(s.k) * s.kh * s.kw * s.c;
  StreamBuffer<bf16> w16(nw, stream);
  cast(nw, w, w16.get(), stream);
  return w16;
}

constexpr GemmType kBf16 = GemmType::bf16, kF32 = GemmType::f32;

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, cudaStream_t stream) {
  const Geometry g = geometry(s);
  if (s.n <= 0 || s.k <= 0 || g.oh <= 0 || g.ow <= 0) return;
  const int64_t rows = s.n * g.img_rows;
  float beta = 0.0f;
  if (bias) {
    // The GEMM accumulates onto the bias (beta = 1) instead of a separate pass afterwards.
    broadcast_rows(rows, s.k, bias, y, stream);
    beta = 1.0f;
  }
  if (g.pointwise || g.patch == 0) {
    // patch == 0 (no input channels): sgemm's k == 0 path leaves bias or zeros.
    sgemm(false, true, checked_int(rows, "rows"), s.k, s.c, 1.0f, x, s.c, w, s.c, beta, y, s.k,
          stream);
    return;
  }
  const int chunk = images_per_chunk(s, g);
  const Dims d = dims(s, g);
  const StreamBuffer<float> col_buffer(chunk * g.img_rows * g.patch, stream);
  float* col = col_buffer.get();
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int nb = std::min(chunk, s.n - n0);
    im2col(d, nb, x + n0 * g.img_in, col, stream);
    sgemm(false, true, checked_int(nb * g.img_rows, "rows"), s.k, int(g.patch), 1.0f, col,
          int(g.patch), w, int(g.patch), beta, y + n0 * g.img_rows * s.k, s.k, stream);
  }
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, cudaStream_t stream) {
  const Geometry g = geometry(s);
  if (s.n <= 0) return;
  if (s.k <= 0 || g.oh <= 0 || g.ow <= 0 || g.patch == 0) {
    if (dx && g.img_in > 0)
      OSPREY_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * s.n * g.img_in, stream));
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  if (db) add_column_sums(rows, s.k, dy, db, stream);
  if (g.pointwise) {
    const int m = checked_int(rows, "rows");
    if (dw) sgemm(true, false, s.k, s.c, m, 1.0f, dy, s.k, x, s.c, 1.0f, dw, s.c, stream);
    if (dx) sgemm(false, false, m, s.c, s.k, 1.0f, dy, s.k, w, s.c, 0.0f, dx, s.c, stream);
    return;
  }
  if (!dw && !dx) return;
  const int chunk = images_per_chunk(s, g);
  const Dims d = dims(s, g);
  const int patch = int(g.patch);
  // One buffer serves both: stream order makes the weight gradient consume col before dcol
  // overwrites it.
  const StreamBuffer<float> col_buffer(chunk * g.img_rows * g.patch, stream);
  float* col = col_buffer.get();
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int nb = std::min(chunk, s.n - n0);
    const int m = checked_int(nb * g.img_rows, "rows");
    const float* dyc = dy + n0 * g.img_rows * s.k;
    if (dw) {
      im2col(d, nb, x + n0 * g.img_in, col, stream);
      sgemm(true, false, s.k, patch, m, 1.0f, dyc, s.k, col, patch, 1.0f, dw, patch, stream);
    }
    if (dx) {
      sgemm(false, false, m, patch, s.k, 1.0f, dyc, s.k, w, patch, 0.0f, col, patch, stream);
      col2im(d, nb, col, dx + n0 * g.img_in, stream);
    }
  }
}

// bf16: activations through bf16 tensor-core GEMMs with fp32 accumulation, weights cast to
// bf16 per call, weight gradients accumulated in fp32, the input gradient of a 3x3 summed in
// fp32 (col2im) and rounded once.
void conv2d_forward(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bf16* y,
                    cudaStream_t stream) {
  const Geometry g = geometry(s);
  if (s.n <= 0 || s.k <= 0 || g.oh <= 0 || g.ow <= 0) return;
  const int64_t rows = s.n * g.img_rows;
  const StreamBuffer<bf16> w16_buffer = bf16_weights(s, w, stream);
  const bf16* w16 = w16_buffer.get();
  // With a bias the products accumulate onto it in fp32 and are rounded once at the end, as on
  // the CPU; without, the GEMM writes bf16 directly.
  StreamBuffer<float> acc_buffer;
  if (bias) {
    acc_buffer = StreamBuffer<float>(rows * s.k, stream);
    broadcast_rows(rows, s.k, bias, acc_buffer.get(), stream);
  }
  float* acc = acc_buffer.get();
  const GemmType ct = bias ? kF32 : kBf16;
  const float beta = bias ? 1.0f : 0.0f;
  auto out_rows = [&](int64_t r) -> void* {
    return bias ? static_cast<void*>(acc + r * s.k) : static_cast<void*>(y + r * s.k);
  };
  if (g.pointwise || g.patch == 0) {
    gemm(kBf16, ct, false, true, checked_int(rows, "rows"), s.k, s.c, 1.0f, x, s.c, w16, s.c, beta,
         out_rows(0), s.k, stream);
  } else {
    const int chunk = images_per_chunk(s, g);
    const Dims d = dims(s, g);
    const StreamBuffer<bf16> col_buffer(chunk * g.img_rows * g.patch, stream);
    bf16* col = col_buffer.get();
    for (int n0 = 0; n0 < s.n; n0 += chunk) {
      const int nb = std::min(chunk, s.n - n0);
      im2col(d, nb, x + n0 * g.img_in, col, stream);
      gemm(kBf16, ct, false, true, checked_int(nb * g.img_rows, "rows"), s.k, int(g.patch), 1.0f,
           col, int(g.patch), w16, int(g.patch), beta, out_rows(n0 * g.img_rows), s.k, stream);
    }
  }
  if (acc) cast(rows * s.k, acc, y, stream);
}

void conv2d_backward(const Conv2dShape& s, const bf16* x, const float* w, const bf16* dy, bf16* dx,
                     float* dw, float* db, cudaStream_t stream) {
  const Geometry g = geometry(s);
  if (s.n <= 0) return;
  if (s.k <= 0 || g.oh <= 0 || g.ow <= 0 || g.patch == 0) {
    if (dx && g.img_in > 0)
      OSPREY_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(bf16) * s.n * g.img_in, stream));
    return;
  }
  const int64_t rows = s.n * g.img_rows;
  if (db) add_column_sums(rows, s.k, dy, db, stream);
  const StreamBuffer<bf16> w16_buffer = dx ? bf16_weights(s, w, stream) : StreamBuffer<bf16>();
  const bf16* w16 = w16_buffer.get();
  if (g.pointwise) {
    const int m = checked_int(rows, "rows");
    if (dw)
      gemm(kBf16, kF32, true, false, s.k, s.c, m, 1.0f, dy, s.k, x, s.c, 1.0f, dw, s.c, stream);
    if (dx)
      gemm(kBf16, kBf16, false, false, m, s.c, s.k, 1.0f, dy, s.k, w16, s.c, 0.0f, dx, s.c, stream);
  } else if (dw || dx) {
    const int chunk = images_per_chunk(s, g);
    const Dims d = dims(s, g);
    const int patch = int(g.patch);
    // One buffer, sized for the fp32 input-gradient columns, serves the bf16 im2col too; stream
    // order makes the weight gradient consume it before they overwrite it.
    const StreamBuffer<float> col_buffer(chunk * g.img_rows * g.patch, stream);
    float* colf = col_buffer.get();
    bf16* col16 = reinterpret_cast<bf16*>(colf);
    for (int n0 = 0; n0 < s.n; n0 += chunk) {
      const int nb = std::min(chunk, s.n - n0);
      const int m = checked_int(nb * g.img_rows, "rows");
      const bf16* dyc = dy + n0 * g.img_rows * s.k;
      if (dw) {
        im2col(d, nb, x + n0 * g.img_in, col16, stream);
        gemm(kBf16, kF32, true, false, s.k, patch, m, 1.0f, dyc, s.k, col16, patch, 1.0f, dw, patch,
             stream);
      }
      if (dx) {
        gemm(kBf16, kF32, false, false, m, patch, s.k, 1.0f, dyc, s.k, w16, patch, 0.0f, colf,
             patch, stream);
        col2im(d, nb, colf, dx + n0 * g.img_in, stream);
      }
    }
  }
}

}  // namespace osprey::cuda
