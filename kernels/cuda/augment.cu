// Every float operation below is spelled with an explicit rounding (__fmul_rn, ...) in the
// order data/transforms.cpp evaluates it, so the compiler cannot contract it into an FMA the CPU
// does not use: resize, crop, flip, colour and normalize give the CPU's bits.
#include <cstdint>

#include "kernels/cuda/augment.h"
#include "kernels/cuda/check.cuh"

namespace osprey::cuda {
namespace {

using i64 = int64_t;

constexpr int kThreads = 256;

int blocks_for(i64 n) {
  const i64 b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

#define GRID_STRIDE(i, n)                                           \
  for (i64 i = blockIdx.x * i64{blockDim.x} + threadIdx.x; i < (n); \
       i += i64{gridDim.x} * blockDim.x)

__device__ __forceinline__ float clamp01(float v) {
  return fminf(1.0f, fmaxf(0.0f, v));
}

// tf.cpp's make_taps for one output coordinate.
struct Tap {
  int i0, i1;
  float l0, l1;
};

__device__ __forceinline__ Tap tap(int in, int out, int o) {
  const float scale = __fdiv_rn(float(in), float(out));
  const float src = fmaxf(0.0f, __fsub_rn(__fmul_rn(__fadd_rn(float(o), 0.5f), scale), 0.5f));
  Tap t;
  t.i0 = min(int(src), in - 1);
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  t.l1 = __fsub_rn(src, float(t.i0));
  t.l0 = __fsub_rn(1.0f, t.l1);
  return t;
}

// a * b + c * d, each product and the sum rounded separately.
__device__ __forceinline__ float mix(float a, float b, float c, float d) {
  return __fadd_rn(__fmul_rn(a, b), __fmul_rn(c, d));
}

__device__ __forceinline__ float gray(const float* p) {
  return __fadd_rn(__fadd_rn(__fmul_rn(0.299f, p[0]), __fmul_rn(0.587f, p[1])),
                   __fmul_rn(0.114f, p[2]));
}

__global__ void unit_float_kernel(i64 pixels, int c_in, int c_out, const uint8_t* __restrict__ in,
                                  float* __restrict__ out) {
  GRID_STRIDE(e, pixels * c_out) {
    const i64 p = e / c_out;
    const int k = int(e - p * c_out);
    out[e] = __fdiv_rn(float(in[p * c_in + (c_in == c_out ? k : 0)]), 255.0f);
  }
}

__global__ void resized_crop_kernel(int b, int h, int w, int c, const AugmentBox* boxes, int oh,
                                    int ow, const float* __restrict__ in, float* __restrict__ out) {
  GRID_STRIDE(e, i64{b} * oh * ow * c) {
    const int k = int(e % c);
    const i64 p = e / c;
    const int x = int(p % ow), y = int(p / ow % oh);
    const int s = int(p / (i64{ow} * oh));
    const AugmentBox box = boxes ? boxes[s] : AugmentBox{0, 0, h, w};
    const Tap a = tap(box.height, oh, y), bt = tap(box.width, ow, x);
    const float* img = in + i64{s} * h * w * c;
    const float* r0 = img + (i64{box.top} + a.i0) * w * c + i64{box.left} * c + k;
    const float* r1 = img + (i64{box.top} + a.i1) * w * c + i64{box.left} * c + k;
    const float top = mix(bt.l0, r0[bt.i0 * c], bt.l1, r0[bt.i1 * c]);
    const float bottom = mix(bt.l0, r1[bt.i0 * c], bt.l1, r1[bt.i1 * c]);
    out[e] = mix(a.l0, top, a.l1, bottom);
  }
}

__global__ void hflip_kernel(int b, int h, int w, int c, const uint8_t* __restrict__ flip,
                             const float* __restrict__ in, float* __restrict__ out) {
  GRID_STRIDE(e, i64{b} * h * w * c) {
    const int k = int(e % c);
    const i64 p = e / c;
    const int x = int(p % w);
    const i64 row = p / w;  // sample * h + y
    const int s = int(row / h);
    out[e] = in[(row * w + (flip[s] ? w - 1 - x : x)) * c + k];
  }
}

__global__ void pad_crop_kernel(int b, int h, int w, int c, int pad, float fill,
                                const AugmentBox* boxes, int top0, int left0, int oh, int ow,
                                const float* __restrict__ in, float* __restrict__ out) {
  GRID_STRIDE(e, i64{b} * oh * ow * c) {
    const int k = int(e % c);
    const i64 p = e / c;
    const int x = int(p % ow), y = int(p / ow % oh);
    const int s = int(p / (i64{ow} * oh));
    const int top = boxes ? boxes[s].top : top0, left = boxes ? boxes[s].left : left0;
    const int sy = top + y - pad, sx = left + x - pad;
    out[e] =
        sy >= 0 && sy < h && sx >= 0 && sx < w ? in[((i64{s} * h + sy) * w + sx) * c + k] : fill;
  }
}

// torchvision's _rgb2hsv / _hsv2rgb as in data/transforms.cpp.
__device__ void rgb_to_hsv(const float* p, float& h, float& s, float& v) {
  const float r = p[0], g = p[1], b = p[2];
  const float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
  const bool eqc = maxc == minc;
  const float cr = __fsub_rn(maxc, minc);
  s = __fdiv_rn(cr, eqc ? 1.0f : maxc);
  const float div = eqc ? 1.0f : cr;
  const float rc = __fdiv_rn(__fsub_rn(maxc, r), div), gc = __fdiv_rn(__fsub_rn(maxc, g), div),
              bc = __fdiv_rn(__fsub_rn(maxc, b), div);
  float hh;
  if (maxc == r)
    hh = __fsub_rn(bc, gc);
  else if (maxc == g)
    hh = __fsub_rn(__fadd_rn(2.0f, rc), bc);
  else
    hh = __fsub_rn(__fadd_rn(4.0f, gc), rc);
  const float h1 = __fadd_rn(__fdiv_rn(hh, 6.0f), 1.0f);
  h = __fsub_rn(h1, floorf(h1));
  v = maxc;
}

__device__ void hsv_to_rgb(float h, float s, float v, float* p) {
  const float h6 = __fmul_rn(h, 6.0f);
  const float fi = floorf(h6);
  const float f = __fsub_rn(h6, fi);
  int i = int(fi);
  if (i >= 6) i -= 6;
  const float pp = clamp01(__fmul_rn(v, __fsub_rn(1.0f, s)));
  const float q = clamp01(__fmul_rn(v, __fsub_rn(1.0f, __fmul_rn(s, f))));
  const float t = clamp01(__fmul_rn(v, __fsub_rn(1.0f, __fmul_rn(s, __fsub_rn(1.0f, f)))));
  const float r[6] = {v, q, pp, pp, t, v};
  const float g[6] = {t, v, v, q, pp, pp};
  const float b[6] = {pp, pp, t, v, v, q};
  p[0] = r[i];
  p[1] = g[i];
  p[2] = b[i];
}

// Fixed-order block sum of doubles; every thread gets the total.
__device__ double block_sum(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const double total = red[0];
  __syncthreads();
  return total;
}

// One block per image: the adjustments in the sample's order, each a pass over the image.
__global__ void __launch_bounds__(kThreads)
    color_jitter_kernel(i64 pixels, int c, const JitterParams* __restrict__ params, float* img) {
  __shared__ double red[kThreads];
  const JitterParams jp = params[blockIdx.x];
  float* im = img + i64{blockIdx.x} * pixels * c;
  const i64 n = pixels * c;
  for (int step = 0; step < 4; ++step) {
    const int k = jp.order[step];
    if (!jp.use[k]) continue;
    const float f = jp.factor[k];
    if (k == 0) {
      for (i64 i = threadIdx.x; i < n; i += kThreads) im[i] = clamp01(__fmul_rn(im[i], f));
    } else if (k == 1) {
      double sum = 0.0;
      if (c == 3)
        for (i64 i = threadIdx.x; i < pixels; i += kThreads) sum += double(gray(im + 3 * i));
      else
        for (i64 i = threadIdx.x; i < n; i += kThreads) sum += double(im[i]);
      sum = block_sum(sum, red);
      const float mean = pixels > 0 ? float(sum / double(c == 3 ? pixels : n)) : 0.0f;
      const float base = __fmul_rn(__fsub_rn(1.0f, f), mean);
      for (i64 i = threadIdx.x; i < n; i += kThreads)
        im[i] = clamp01(__fadd_rn(__fmul_rn(f, im[i]), base));
    } else if (k == 2 && c == 3) {
      for (i64 i = threadIdx.x; i < pixels; i += kThreads) {
        float* p = im + 3 * i;
        const float base = __fmul_rn(__fsub_rn(1.0f, f), gray(p));
        for (int ch = 0; ch < 3; ++ch) p[ch] = clamp01(__fadd_rn(__fmul_rn(f, p[ch]), base));
      }
    } else if (k == 3 && c == 3) {
      for (i64 i = threadIdx.x; i < pixels; i += kThreads) {
        float* p = im + 3 * i;
        float h, s, v;
        rgb_to_hsv(p, h, s, v);
        h = __fadd_rn(h, f);
        h = __fsub_rn(h, floorf(h));
        hsv_to_rgb(h, s, v, p);
      }
    }
    __syncthreads();  // the next adjustment (contrast: its mean) reads the whole image
  }
}

__global__ void rotate_kernel(int b, int h, int w, int c, const double2* __restrict__ cos_sin,
                              float fill, bool bilinear, const float* __restrict__ in,
                              float* __restrict__ out) {
  GRID_STRIDE(p, i64{b} * h * w) {
    const int x = int(p % w), y = int(p / w % h);
    const int s = int(p / (i64{w} * h));
    const double ca = cos_sin[s].x, sa = cos_sin[s].y;
    const double cx = 0.5 * w, cy = 0.5 * h;
    const double yc = __dsub_rn(__dadd_rn(double(y), 0.5), cy);
    const double xc = __dsub_rn(__dadd_rn(double(x), 0.5), cx);
    const double ix =
        __dsub_rn(__dadd_rn(__dsub_rn(__dmul_rn(ca, xc), __dmul_rn(sa, yc)), cx), 0.5);
    const double iy =
        __dsub_rn(__dadd_rn(__dadd_rn(__dmul_rn(sa, xc), __dmul_rn(ca, yc)), cy), 0.5);
    const float* img = in + i64{s} * h * w * c;
    float* dst = out + p * c;
    if (!bilinear) {
      const int sx = int(rint(ix)), sy = int(rint(iy));
      const bool inside = sx >= 0 && sx < w && sy >= 0 && sy < h;
      for (int k = 0; k < c; ++k) dst[k] = inside ? img[(i64{sy} * w + sx) * c + k] : fill;
      continue;
    }
    const double fx0 = floor(ix), fy0 = floor(iy);
    const int x0 = int(fx0), y0 = int(fy0);
    const float lx = float(__dsub_rn(ix, fx0)), ly = float(__dsub_rn(iy, fy0));
    const float ux = __fsub_rn(1.0f, lx), uy = __fsub_rn(1.0f, ly);
    if (x0 >= 0 && x0 + 1 < w && y0 >= 0 && y0 + 1 < h) {
      const float* p0 = img + (i64{y0} * w + x0) * c;
      const float* p1 = p0 + i64{w} * c;
      for (int k = 0; k < c; ++k)
        dst[k] = mix(uy, mix(ux, p0[k], lx, p0[c + k]), ly, mix(ux, p1[k], lx, p1[c + k]));
      continue;
    }
    const float wts[4] = {__fmul_rn(ux, uy), __fmul_rn(lx, uy), __fmul_rn(ux, ly),
                          __fmul_rn(lx, ly)};
    const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
    float m = 0.0f;
    for (int k = 0; k < c; ++k) dst[k] = 0.0f;
    for (int t = 0; t < 4; ++t) {
      if (xs[t] < 0 || xs[t] >= w || ys[t] < 0 || ys[t] >= h) continue;
      const float* q = img + (i64{ys[t]} * w + xs[t]) * c;
      for (int k = 0; k < c; ++k) dst[k] = __fadd_rn(dst[k], __fmul_rn(wts[t], q[k]));
      m = __fadd_rn(m, wts[t]);
    }
    for (int k = 0; k < c; ++k) dst[k] = mix(dst[k], m, __fsub_rn(1.0f, m), fill);
  }
}

__global__ void normalize_kernel(i64 pixels, int c, const float* __restrict__ mean,
                                 const float* __restrict__ std, float* img) {
  GRID_STRIDE(e, pixels * c) {
    const int k = int(e % c);
    img[e] = __fdiv_rn(__fsub_rn(img[e], mean[k]), std[k]);
  }
}

}  // namespace

void unit_float_from_u8(int64_t pixels, int c_in, int c_out, const uint8_t* in, float* out,
                        cudaStream_t stream) {
  if (pixels <= 0) return;
  unit_float_kernel<<<blocks_for(pixels * c_out), kThreads, 0, stream>>>(pixels, c_in, c_out, in,
                                                                         out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void resized_crop_bilinear(int b, int h, int w, int c, const AugmentBox* boxes, int oh, int ow,
                           const float* in, float* out, cudaStream_t stream) {
  const i64 n = i64{b} * oh * ow * c;
  if (n <= 0) return;
  resized_crop_kernel<<<blocks_for(n), kThreads, 0, stream>>>(b, h, w, c, boxes, oh, ow, in, out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void hflip(int b, int h, int w, int c, const uint8_t* flip, const float* in, float* out,
           cudaStream_t stream) {
  const i64 n = i64{b} * h * w * c;
  if (n <= 0) return;
  hflip_kernel<<<blocks_for(n), kThreads, 0, stream>>>(b, h, w, c, flip, in, out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void pad_crop(int b, int h, int w, int c, int pad, float fill, const AugmentBox* boxes, int top,
              int left, int oh, int ow, const float* in, float* out, cudaStream_t stream) {
  const i64 n = i64{b} * oh * ow * c;
  if (n <= 0) return;
  pad_crop_kernel<<<blocks_for(n), kThreads, 0, stream>>>(b, h, w, c, pad, fill, boxes, top, left,
                                                          oh, ow, in, out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void color_jitter(int b, int64_t pixels, int c, const JitterParams* params, float* img,
                  cudaStream_t stream) {
  if (b <= 0 || pixels <= 0) return;
  color_jitter_kernel<<<b, kThreads, 0, stream>>>(pixels, c, params, img);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void rotate(int b, int h, int w, int c, const double2* cos_sin, float fill, bool bilinear,
            const float* in, float* out, cudaStream_t stream) {
  const i64 n = i64{b} * h * w;
  if (n <= 0) return;
  rotate_kernel<<<blocks_for(n), kThreads, 0, stream>>>(b, h, w, c, cos_sin, fill, bilinear, in,
                                                        out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void normalize(int64_t pixels, int c, const float* mean, const float* std, float* img,
               cudaStream_t stream) {
  if (pixels <= 0) return;
  normalize_kernel<<<blocks_for(pixels * c), kThreads, 0, stream>>>(pixels, c, mean, std, img);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace osprey::cuda
