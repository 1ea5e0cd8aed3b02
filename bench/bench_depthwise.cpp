// Times the CUDA depthwise kernels (forward, input gradient, weight + bias gradient) at every
// distinct depthwise shape of MobileNetV2 (width 1.0): torchvision's at 224 with batch 128 and
// the CIFAR-stem variant (models/mobilenet_v2.cpp: stem and features[2] at stride 1) at 32 with
// batch 512. One JSON object per line; GB/s counts the minimal traffic (every input and output
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
  cudaCheck(cudaEventCreate(&a));
  cudaCheck(cudaEventCreate(&b));
  std::vector<float> ms(kRuns);
  for (float& t : ms) {
    cudaCheck(cudaEventRecord(a));
    launch();
    cudaCheck(cudaEventRecord(b));
    cudaCheck(cudaEventSynchronize(b));
    cudaCheck(cudaEventElapsedTime(&t, a, b));
  }
  cudaCheck(cudaEventDestroy(a));
  cudaCheck(cudaEventDestroy(b));
  std::nth_element(ms.begin(), ms.begin() + kRuns / 2, ms.end());
  return ms[kRuns / 2];
}

float* device_floats(size_t n) {
  float* p = nullptr;
  cudaCheck(cudaMalloc(&p, n * sizeof(float)));
  // Small finite values: NaN/denormal slow paths must not colour the timing.
  cudaCheck(cudaMemset(p, 0x3c, n * sizeof(float)));
  return p;
}

void report(const Layer& l, const char* pass, float ms, double bytes) {
  std::printf(
      "{\"shape\":\"%s %dx%dx%d s%d\",\"n\":%d,\"h\":%d,\"w\":%d,\"c\":%d,\"stride\":%d,"
      "\"pass\":\"%s\",\"ms\":%.4f,\"gbps\":%.1f}\n",
      l.net, l.h, l.w, l.c, l.stride, l.n, l.h, l.w, l.c, l.stride, pass, ms,
      bytes / (ms * 1e-3) / 1e9);
  std::fflush(stdout);
}

}  // namespace

int main() {
  for (const Layer& l : kLayers) {
    osprey::cuda::DepthwiseShape s;
    s.n = l.n, s.h = l.h, s.w = l.w, s.c = l.c, s.kh = 3, s.kw = 3, s.stride = l.stride, s.pad = 1;
    const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.oh() * s.ow() * s.c;
    const size_t nw = 9 * size_t(s.c);
    float *x = device_floats(nx), *y = device_floats(ny), *w = device_floats(nw);
    float *dy = device_floats(ny), *dx = device_floats(nx), *dw = device_floats(nw),
          *db = device_floats(s.c);
    const double f = sizeof(float);
    report(l, "fwd",
           median_ms([&] { osprey::cuda::depthwise_conv2d_forward(s, x, w, nullptr, y, nullptr); }),
           f * (nx + ny + nw));
    report(l, "dgrad", median_ms([&] {
             osprey::cuda::depthwise_conv2d_backward(s, x, w, dy, dx, nullptr, nullptr, nullptr);
           }),
           f * (ny + nx + nw));
    report(l, "wgrad", median_ms([&] {
             osprey::cuda::depthwise_conv2d_backward(s, x, w, dy, nullptr, dw, db, nullptr);
           }),
           f * (nx + ny + nw + s.c));
    for (float* p : {x, y, w, dy, dx, dw, db}) cudaCheck(cudaFree(p));
  }
  return 0;
}
