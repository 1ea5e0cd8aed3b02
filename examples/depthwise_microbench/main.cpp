// Times one kernel family called directly through the installed kernels library: the depthwise
// 3x3 convolution (forward, input gradient, weight + bias gradient) at MobileNetV2's depthwise
// layers at CIFAR resolution, on the CPU and, when Osprey was built with CUDA and a GPU is
// present, on the GPU. Every kernel is first checked, the CPU one against a plain double loop and
// the CUDA one against the CPU one, then timed: the median of the repeats after a warm-up.
// Usage: depthwise_microbench [--batch N] [--repeats N] [--warmup N] [--threads N (0: all cores)]
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/threads.h"
#include "kernels/types.h"
#ifdef OSPREY_WITH_CUDA
#include "kernels/cuda/depthwise.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/runtime.h"
#endif

using osprey::DepthwiseShape;
using Vec = std::vector<float>;

namespace {

// A float sum of L terms, in any order, is within L * 2^-24 * sum|terms| of the exact sum. The
// kernels add in float over short chains only (a pixel's 9 taps and bias; for the weight
// gradient a few output rows of one channel, about a hundred terms, whose sums are joined in
// double), so 1e-5 * sum|terms| (L = 168) bounds their error, while a wrong tap or a lost border
// row moves a result by whole terms. CUDA against CPU: both errors add up, twice the bound.
constexpr double kTol = 1e-5;

struct Options {
  int batch = 64, warmup = 3, repeats = 20, threads = 0;
};

// MobileNetV2 (CIFAR stem, models/mobilenet_v2.cpp) depthwise inputs: height = width, channels.
struct Layer {
  int hw, c, stride;
};
const Layer kLayers[] = {{32, 96, 1}, {16, 192, 2}, {8, 384, 1}, {4, 960, 1}};
const char* const kPasses[] = {"fwd", "dgrad", "wgrad"};

struct Case {
  DepthwiseShape s;
  Vec x, w, b, dy;  // NHWC input, [3][3][C] weights, [C] bias, NHWC output gradient
};
// What the passes write: y (forward), dx (input gradient), dw and db (weight gradient).
template <class T>
struct Results {
  std::vector<T> y, dx, dw, db;
  explicit Results(const Case& k)
      : y(k.s.output_numel()), dx(k.s.input_numel()), dw(k.w.size()), db(k.s.c) {}
};
using Outputs = Results<float>;
// The exact results and, per element, the sum of its terms' magnitudes (the bound's scale).
struct Reference {
  Results<double> sum, mag;
};

Case make_case(const Layer& l, int batch, unsigned seed) {
  Case k;
  k.s.n = batch, k.s.h = k.s.w = l.hw, k.s.c = l.c, k.s.stride = l.stride;  // 3x3, pad 1
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto random = [&](size_t n) {
    Vec v(n);
    for (float& e : v) e = u(rng);
    return v;
  };
  k.x = random(k.s.input_numel()), k.w = random(9 * size_t(l.c)), k.b = random(l.c);
  k.dy = random(k.s.output_numel());
  return k;
}

void add(double& sum, double& mag, double term) {
  sum += term;
  mag += std::fabs(term);
}

// Every pass at once, in double, straight from the definition: each (output pixel, tap) pair
// inside the image adds x * w to y, dy * w to dx and x * dy to dw.
Reference reference(const Case& k) {
  const DepthwiseShape& s = k.s;
  Reference r{Results<double>(k), Results<double>(k)};
  Results<double>&sum = r.sum, &mag = r.mag;
  for (int64_t n = 0; n < s.n; ++n)
    for (int oh = 0; oh < s.oh(); ++oh)
      for (int ow = 0; ow < s.ow(); ++ow) {
        const int64_t yo = ((n * s.oh() + oh) * s.ow() + ow) * s.c;
        for (int c = 0; c < s.c; ++c) {
          add(sum.y[yo + c], mag.y[yo + c], k.b[c]);
          add(sum.db[c], mag.db[c], k.dy[yo + c]);
        }
        for (int i = 0; i < s.kh; ++i)
          for (int j = 0; j < s.kw; ++j) {
            const int ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
            if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
            const int64_t xo = ((n * s.h + ih) * s.w + iw) * s.c, wo = (i * s.kw + j) * s.c;
            for (int c = 0; c < s.c; ++c) {
              const double x = k.x[xo + c], w = k.w[wo + c], g = k.dy[yo + c];
              add(sum.y[yo + c], mag.y[yo + c], x * w);
              add(sum.dx[xo + c], mag.dx[xo + c], g * w);
              add(sum.dw[wo + c], mag.dw[wo + c], x * g);
            }
          }
      }
  return r;
}

// Raises abs to the largest |got - want| and share to the largest fraction of its bound
// tol * mag; returns how many elements are over their bound (a NaN is).
template <class T>  // T: the expected values' type, double (exact) or float (the CPU kernel's)
int64_t compare(const Vec& got, const std::vector<T>& want, const std::vector<double>& mag,
                double tol, double& abs, double& share) {
  int64_t over = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i])), bound = tol * mag[i];
    over += !(d <= bound);
    abs = std::max(abs, d);
    if (d > 0) share = std::max(share, d / bound);
  }
  return over;
}

std::string name(const DepthwiseShape& s) {
  return std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
         std::to_string(s.c) + " s" + std::to_string(s.stride);
}

// Checks one pass's outputs; prints the line CI looks for.
template <class T>
bool validate(const char* device, int pass, const DepthwiseShape& s, const Outputs& got,
              const Results<T>& want, const Results<double>& mag, double tol) {
  double abs = 0, share = 0;
  int64_t over = 0;
  if (pass == 0) over += compare(got.y, want.y, mag.y, tol, abs, share);
  if (pass == 1) over += compare(got.dx, want.dx, mag.dx, tol, abs, share);
  if (pass == 2) {
    over += compare(got.dw, want.dw, mag.dw, tol, abs, share);
    over += compare(got.db, want.db, mag.db, tol, abs, share);
  }
  const bool ok = over == 0;
  std::printf("%s: %-4s %-5s %-16s max abs err %.2e, %.3g of the bound",
              ok ? "validation passed" : "VALIDATION FAILED", device, kPasses[pass],
              name(s).c_str(), abs, share);
  std::printf(ok ? "\n" : " (%lld over it)\n", static_cast<long long>(over));
  return ok;
}

template <class F>  // once(): runs the kernel once and returns its time in ms
double median_ms(const Options& o, F&& once) {
  for (int i = 0; i < o.warmup; ++i) once();
  std::vector<double> t(o.repeats);
  for (double& v : t) v = once();
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// GB/s counts each array read or written once (the least traffic); GFLOP/s the multiply-adds.
void report(const char* device, int pass, const DepthwiseShape& s, double ms) {
  const double bytes = 4.0 * (s.input_numel() + s.output_numel() + 9 * s.c + (pass != 1) * s.c);
  const double flops = 2.0 * s.kh * s.kw * s.output_numel();
  std::printf("%-4s %-5s %-16s %9.4f ms %8.1f GB/s %8.1f GFLOP/s\n", device, kPasses[pass],
              name(s).c_str(), ms, bytes / ms / 1e6, flops / ms / 1e6);
}

using Calls = std::array<std::function<void()>, 3>;  // the passes, in kPasses' order

// timed(f) runs f once and returns its time in ms.
template <class Timer>
void time_passes(const char* device, const DepthwiseShape& s, const Calls& calls, const Options& o,
                 Timer&& timed) {
  for (int pass = 0; pass < 3; ++pass)
    report(device, pass, s, median_ms(o, [&] { return timed(calls[pass]); }));
}

// The passes writing into o; the weight gradient accumulates (+=) into dw and db.
Calls cpu_calls(const Case& k, Outputs& o) {
  namespace cpu = osprey::cpu;
  return {
      [&] { cpu::depthwise_conv2d_forward(k.s, k.x.data(), k.w.data(), k.b.data(), o.y.data()); },
      [&] {
        cpu::depthwise_conv2d_backward(k.s, k.x.data(), k.w.data(), k.dy.data(), o.dx.data(),
                                       nullptr, nullptr);
      },
      [&] {
        cpu::depthwise_conv2d_backward(k.s, k.x.data(), k.w.data(), k.dy.data(), nullptr,
                                       o.dw.data(), o.db.data());
      }};
}

// Validates the CPU kernels against the double loop, leaving their results in out, then times
// them (into scratch buffers: out stays what was validated).
bool run_cpu(const Case& k, const Reference& ref, const Options& o, Outputs& out) {
  const Calls calls = cpu_calls(k, out);
  for (int pass = 0; pass < 3; ++pass) {
    calls[pass]();
    if (!validate("cpu", pass, k.s, out, ref.sum, ref.mag, kTol)) return false;
  }
  Outputs scratch(k);
  time_passes("cpu", k.s, cpu_calls(k, scratch), o, [](const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  });
  return true;
}

#ifdef OSPREY_WITH_CUDA
namespace cuda = osprey::cuda;

void check(cudaError_t e) {
  if (e != cudaSuccess) throw std::runtime_error(cudaGetErrorString(e));
}

// Device memory from Osprey's stream-ordered pool, filled from and read back to host vectors.
struct DeviceArray {
  float* p;
  size_t n;
  explicit DeviceArray(size_t count)
      : p(static_cast<float*>(cuda::device_malloc(count * sizeof(float)))), n(count) {
    cuda::memset_device(p, 0, n * sizeof(float));
  }
  explicit DeviceArray(const Vec& v) : DeviceArray(v.size()) {
    cuda::copy_to_device(p, v.data(), n * sizeof(float));
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cuda::device_free(p); }
  Vec to_host() const {
    Vec v(n);
    cuda::copy_to_host(v.data(), p, n * sizeof(float));
    return v;
  }
};

// Validates the CUDA kernels against the CPU kernel's outputs, then times them with events.
bool run_cuda(const Case& k, const Outputs& cpu_out, const Reference& ref, const Options& o) {
  const DepthwiseShape& s = k.s;
  const DeviceArray x(k.x), w(k.w), b(k.b), dy(k.dy), y(s.output_numel()), dx(s.input_numel()),
      dw(k.w.size()), db(s.c);
  cudaStream_t st = cuda::compute_stream();
  const Calls calls = {
      [&] { cuda::depthwise_conv2d_forward(s, x.p, w.p, b.p, y.p, st); },
      [&] { cuda::depthwise_conv2d_backward(s, x.p, w.p, dy.p, dx.p, nullptr, nullptr, st); },
      [&] { cuda::depthwise_conv2d_backward(s, x.p, w.p, dy.p, nullptr, dw.p, db.p, st); }};
  for (const auto& call : calls) call();
  Outputs got(k);
  got.y = y.to_host(), got.dx = dx.to_host(), got.dw = dw.to_host(), got.db = db.to_host();
  for (int pass = 0; pass < 3; ++pass)
    if (!validate("cuda", pass, s, got, cpu_out, ref.mag, 2 * kTol)) return false;
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start));
  check(cudaEventCreate(&stop));
  time_passes("cuda", s, calls, o, [&](const std::function<void()>& f) {
    float ms = 0;
    check(cudaEventRecord(start, st));
    f();
    check(cudaEventRecord(stop, st));
    check(cudaEventSynchronize(stop));
    check(cudaEventElapsedTime(&ms, start, stop));
    return double(ms);
  });
  check(cudaEventDestroy(start));
  check(cudaEventDestroy(stop));
  return true;
}
#endif

Options parse(int argc, char** argv) {
  Options o;
  bool ok = argc % 2 == 1;  // flag value pairs
  for (int i = 1; ok && i < argc; i += 2) {
    const std::string flag = argv[i];
    int* v = flag == "--batch"     ? &o.batch
             : flag == "--repeats" ? &o.repeats
             : flag == "--warmup"  ? &o.warmup
             : flag == "--threads" ? &o.threads
                                   : nullptr;
    const int value = std::atoi(argv[i + 1]), least = v == &o.batch || v == &o.repeats ? 1 : 0;
    ok = v && value >= least;
    if (ok) *v = value;
  }
  if (!ok) {
    std::fprintf(stderr, "usage: %s [--batch N] [--repeats N] [--warmup N] [--threads N]\n",
                 argv[0]);
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::printf("depthwise 3x3 pad 1, fp32 NHWC; median of %d after %d warm-up; CPU: %d threads\n",
              o.repeats, o.warmup, osprey::cpu::set_num_threads(o.threads));
#ifdef OSPREY_WITH_CUDA
  const bool gpu = cuda::device_count() > 0;
  if (gpu)
    std::printf("cuda: %s\n", cuda::device_name(0).c_str());
  else
    std::printf("cuda: no GPU present, skipping the CUDA kernels\n");
#else
  std::printf("cuda: this Osprey was built without CUDA, CPU kernels only\n");
#endif
  try {
    for (const Layer& l : kLayers) {
      const Case k = make_case(l, o.batch, 1234 + l.c);
      const Reference ref = reference(k);
      Outputs out(k);
      if (!run_cpu(k, ref, o, out)) return 1;
#ifdef OSPREY_WITH_CUDA
      if (gpu && !run_cuda(k, out, ref, o)) return 1;
#endif
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
