// Times the CUDA depthwise kernels (forward, input gradient, weight + bias gradient) at every
// distinct depthwise shape of MobileNetV2 (width 1.0): torchvision's at 224 with batch 128 and
// the CIFAR-stem variant (models/mobilenet_v2.cpp: stem and features[2] at stride 1) at 32 with
// batch 512, with fp32 and with bf16 activations (weights fp32 in both). One JSON object per
// line; GB/s counts the minimal traffic (every input and output
// once), the figure to compare with cuDNN's and the copy ceiling (~3 TB/s on an H100).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/depthwise.h"

namespace {

struct Layer {
  const char* net;
  int n, h, w, c, stride;
};

// features[k].conv depthwise input sizes; repeated blocks of the same shape are listed once.
const Layer kLayers[] = {
    {"imagenet224", 128, 112, 112, 32, 1}, {"imagenet224", 128, 112, 112, 96, 2},
    {"imagenet224", 128, 56, 56, 144, 1},  {"imagenet224", 128, 56, 56, 144, 2},
    {"imagenet224", 128, 28, 28, 192, 1},  {"imagenet224", 128, 28, 28, 192, 2},
    {"imagenet224", 128, 14, 14, 384, 1},  {"imagenet224", 128, 14, 14, 576, 1},
    {"imagenet224", 128, 14, 14, 576, 2},  {"imagenet224", 128, 7, 7, 960, 1},
    {"cifar32", 512, 32, 32, 32, 1},       {"cifar32", 512, 32, 32, 96, 1},
    {"cifar32", 512, 32, 32, 144, 1},      {"cifar32", 512, 32, 32, 144, 2},
    {"cifar32", 512, 16, 16, 192, 1},      {"cifar32", 512, 16, 16, 192, 2},
    {"cifar32", 512, 8, 8, 384, 1},        {"cifar32", 512, 8, 8, 576, 1},
    {"cifar32", 512, 8, 8, 576, 2},        {"cifar32", 512, 4, 4, 960, 1},
};

constexpr int kWarmup = 5, kRuns = 21;

template <class F>
float median_ms(F&& launch) {
  for (int i = 0; i < kWarmup; ++i) launch();
  cudaEvent_t a, b;
  OSPREY_CUDA_CHECK(cudaEventCreate(&a));
  OSPREY_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms(kRuns);
  for (float& t : ms) {
    OSPREY_CUDA_CHECK(cudaEventRecord(a));
    launch();
    OSPREY_CUDA_CHECK(cudaEventRecord(b));
    OSPREY_CUDA_CHECK(cudaEventSynchronize(b));
    OSPREY_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
  }
  OSPREY_CUDA_CHECK(cudaEventDestroy(a));
  OSPREY_CUDA_CHECK(cudaEventDestroy(b));
  std::nth_element(ms.begin(), ms.begin() + kRuns / 2, ms.end());
  return ms[kRuns / 2];
}

template <typename T>
T* device_array(size_t n) {
  T* p = nullptr;
  OSPREY_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  // Small finite values (0x3c3c... is about 0.011 as float and as bf16): NaN/denormal slow paths
  // must not colour the timing.
  OSPREY_CUDA_CHECK(cudaMemset(p, 0x3c, n * sizeof(T)));
  return p;
}

void report(const Layer& l, const char* dtype, const char* pass, float ms, double bytes) {
  std::printf(
      "{\"shape\":\"%s %dx%dx%d s%d\",\"n\":%d,\"h\":%d,\"w\":%d,\"c\":%d,\"stride\":%d,"
      "\"dtype\":\"%s\",\"pass\":\"%s\",\"ms\":%.4f,\"gbps\":%.1f}\n",
      l.net, l.h, l.w, l.c, l.stride, l.n, l.h, l.w, l.c, l.stride, dtype, pass, ms,
      bytes / (ms * 1e-3) / 1e9);
  std::fflush(stdout);
}

// T: the activations' type (float or bf16); weights and their gradients are float.
template <typename T>
void bench_layer(const Layer& l, const char* dtype) {
  osprey::DepthwiseShape s;
  s.n = l.n, s.h = l.h, s.w = l.w, s.c = l.c, s.kh = 3, s.kw = 3, s.stride = l.stride, s.pad = 1;
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
  const size_t nw = 9 * size_t(s.c);
  T *x = device_array<T>(nx), *y = device_array<T>(ny), *dy = device_array<T>(ny),
    *dx = device_array<T>(nx);
  float *w = device_array<float>(nw), *dw = device_array<float>(nw), *db = device_array<float>(s.c);
  const double a = sizeof(T), f = sizeof(float);
  report(l, dtype, "fwd",
         median_ms([&] { osprey::cuda::depthwise_conv2d_forward(s, x, w, nullptr, y, nullptr); }),
         a * (nx + ny) + f * nw);
  report(l, dtype, "dgrad", median_ms([&] {
           osprey::cuda::depthwise_conv2d_backward(s, x, w, dy, dx, nullptr, nullptr, nullptr);
         }),
         a * (ny + nx) + f * nw);
  report(l, dtype, "wgrad", median_ms([&] {
           osprey::cuda::depthwise_conv2d_backward(s, x, w, dy, static_cast<T*>(nullptr), dw, db,
                                                   nullptr);
         }),
         a * (nx + ny) + f * (nw + s.c));
  for (T* p : {x, y, dy, dx}) OSPREY_CUDA_CHECK(cudaFree(p));
  for (float* p : {w, dw, db}) OSPREY_CUDA_CHECK(cudaFree(p));
}

}  // namespace

int main() {
  for (const Layer& l : kLayers) {
    bench_layer<float>(l, "f32");
    bench_layer<osprey::bf16>(l, "bf16");
  }
  return 0;
}
