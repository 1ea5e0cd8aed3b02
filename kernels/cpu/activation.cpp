#include "kernels/cpu/activation.h"

#include <omp.h>

#include <cstring>

#include "kernels/cpu/vectorize.h"

namespace osprey::cpu {

namespace {

// Below this many elements the fork/join of a parallel region costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

// Written as "v < 0 ? 0 : v" so that NaN passes through, as in PyTorch, and a diverging run
// stays visible instead of being clamped into range.
inline float relu(float v) {
  return v < 0.0f ? 0.0f : v;
}
inline float relu6(float v) {
  return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
}

// Separate in-place and out-of-place loops: with restrict pointers the compiler vectorises
// without the runtime overlap check that would send y == x down a scalar path.
OSPREY_CLONES void forward_span(int64_t n, Activation act, const float* __restrict x,
                                float* __restrict y) {
  if (act == Activation::relu) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu(x[i]);
  } else if (act == Activation::relu6) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu6(x[i]);
  } else {
    std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
  }
}

OSPREY_CLONES void forward_span_inplace(int64_t n, Activation act, float* __restrict y) {
  if (act == Activation::relu) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu(y[i]);
  } else if (act == Activation::relu6) {
    for (int64_t i = 0; i < n; ++i) y[i] = relu6(y[i]);
  }
}

// The masks only ever select dy or zero; dy is loaded unconditionally so the select vectorises.
OSPREY_CLONES void backward_span(int64_t n, Activation act, const float* __restrict y,
                                 const float* __restrict dy, float* __restrict dx) {
  if (act == Activation::relu) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = dy[i];
      dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
  } else if (act == Activation::relu6) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = dy[i];
      dx[i] = ((y[i] > 0.0f) & (y[i] < 6.0f)) ? g : 0.0f;
    }
  } else {
    std::memcpy(dx, dy, static_cast<size_t>(n) * sizeof(float));
  }
}

OSPREY_CLONES void backward_span_inplace(int64_t n, Activation act, const float* __restrict y,
                                         float* __restrict g) {
  if (act == Activation::relu) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = g[i];
      g[i] = y[i] > 0.0f ? v : 0.0f;
    }
  } else if (act == Activation::relu6) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = g[i];
      g[i] = ((y[i] > 0.0f) & (y[i] < 6.0f)) ? v : 0.0f;
    }
  }
}

// Splits [0, n) into one contiguous span per thread (one clone dispatch per span).
template <class F>
void for_spans(int64_t n, F body) {
  const int parts = n > kParallelMin ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int p = 0; p < parts; ++p) {
    const int64_t lo = n * p / parts, hi = n * (p + 1) / parts;
    body(lo, hi - lo);
  }
}

}  // namespace

void activation_forward(int64_t n, Activation act, const float* x, float* y) {
  if (n <= 0 || (x == y && act == Activation::none)) return;
  if (x == y) {
    for_spans(n, [&](int64_t lo, int64_t len) { forward_span_inplace(len, act, y + lo); });
  } else {
    for_spans(n, [&](int64_t lo, int64_t len) { forward_span(len, act, x + lo, y + lo); });
  }
}

void activation_backward(int64_t n, Activation act, const float* y, const float* dy, float* dx) {
  if (n <= 0 || (dx == dy && act == Activation::none)) return;
  if (dx == dy) {
    for_spans(n,
              [&](int64_t lo, int64_t len) { backward_span_inplace(len, act, y + lo, dx + lo); });
  } else {
    for_spans(n,
              [&](int64_t lo, int64_t len) { backward_span(len, act, y + lo, dy + lo, dx + lo); });
  }
}

}  // namespace osprey::cpu
