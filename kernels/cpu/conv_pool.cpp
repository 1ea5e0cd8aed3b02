#include "kernels/cpu/conv_pool.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/vectorize.h"

namespace osprey::cpu {
namespace {

// Generic vectors: each clone of OSPREY_CLONES maps them onto its own registers (one zmm, two
// ymm or four xmm). Plain float arrays would leave the accumulators in memory.
typedef float Vec16 __attribute__((vector_size(64)));
constexpr int kL = 16;

template <class V>
OSPREY_INLINE void vload(V& v, const float* p) {
  std::memcpy(&v, p, sizeof(V));
}
template <class V>
OSPREY_INLINE void vstore(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Below this many multiply-adds a parallel region's fork/join costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// The pool + KH - 1 input rows under one pooled row, zero padded to W + 2P columns, and the
// offsets of taps, window positions and pooled columns within it. Including the padded zeros
// in the sums, as the direct conv kernel does, keeps the results identical to it.
struct Band {
  std::vector<float> data;
  std::vector<int64_t> tap;     // (i, j, c) -> i * pitch + j * C + c, [KH][KW][C] order
  std::vector<int64_t> window;  // a * pool + b -> a * pitch + b * C
  int64_t pitch = 0, column = 0;

  explicit Band(const ConvPoolShape& s) {
    pitch = (static_cast<int64_t>(s.w) + 2 * s.pad) * s.c;
    column = static_cast<int64_t>(s.pool) * s.c;
    data.assign(static_cast<size_t>((s.pool + s.kh - 1) * pitch), 0.0f);
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j)
        for (int c = 0; c < s.c; ++c) tap.push_back(i * pitch + j * s.c + c);
    for (int a = 0; a < s.pool; ++a)
      for (int b = 0; b < s.pool; ++b) window.push_back(a * pitch + b * s.c);
  }

  void load(const ConvPoolShape& s, const float* xi, int oh) {
    const int64_t left = static_cast<int64_t>(s.pad) * s.c, inner = static_cast<int64_t>(s.w) * s.c;
    for (int r = 0; r < s.pool + s.kh - 1; ++r) {
      float* row = data.data() + r * pitch;
      const int ih = oh * s.pool - s.pad + r;
      if (ih < 0 || ih >= s.h) {
        std::fill(row, row + pitch, 0.0f);
        continue;
      }
      std::memcpy(row + left, xi + ih * inner, inner * sizeof(float));
    }
  }
};

// KV vectors of output channels of one pooled pixel: each window position's conv value in
// registers, then the running maximum. Strict '>' keeps the first maximum; a NaN always wins.
template <int KV>
OSPREY_INLINE void pool_block(const ConvPoolShape& s, const Band& b, const float* base,
                              const float* wt, const float* bias, int k0, float* y, uint8_t* am) {
  const int64_t taps = static_cast<int64_t>(b.tap.size());
  for (size_t q = 0; q < b.window.size(); ++q) {
    Vec16 acc[KV];
    for (int v = 0; v < KV; ++v) {
      acc[v] = Vec16{};
      if (bias) vload(acc[v], bias + k0 + v * kL);
    }
    const float* src = base + b.window[q];
    const float* wk = wt + k0;
    for (int64_t t = 0; t < taps; ++t, wk += s.k) {
      const float xv = src[b.tap[t]];
      for (int v = 0; v < KV; ++v) {
        Vec16 wv;
        vload(wv, wk + v * kL);
        acc[v] += xv * wv;
      }
    }
    float* yk = y + k0;
    uint8_t* ak = am + k0;
    if (q == 0) {
      for (int v = 0; v < KV; ++v) vstore(yk + v * kL, acc[v]);
      std::fill(ak, ak + KV * kL, uint8_t{0});
      continue;
    }
    float conv[KV * kL];
    for (int v = 0; v < KV; ++v) vstore(conv + v * kL, acc[v]);
    // A plain loop, which GCC vectorizes; generic-vector compares it scalarizes.
    for (int l = 0; l < KV * kL; ++l) {
      const float c = conv[l];
      const bool take = c > yk[l] || c != c;
      yk[l] = take ? c : yk[l];
      ak[l] = take ? static_cast<uint8_t>(q) : ak[l];
    }
  }
}

// Output channels past the last whole vector, one at a time, in the direct conv kernel's loop
// shape: GCC vectorizes its tap loop as products then in-order adds, which rounds differently
// from multiply-adds, so the loop must be the same for the results to be.
OSPREY_INLINE void pool_tail(const ConvPoolShape& s, const Band& b, const float* base,
                             const float* wt, const float* bias, int k0, float* y, uint8_t* am) {
  const int64_t run = static_cast<int64_t>(s.kw) * s.c;
  for (int k = k0; k < s.k; ++k) {
    float best = 0.0f;
    uint8_t arg = 0;
    for (size_t q = 0; q < b.window.size(); ++q) {
      float acc = bias ? bias[k] : 0.0f;
      const float* src = base + b.window[q];
      const float* wk = wt + k;
      for (int i = 0; i < s.kh; ++i)
        for (int64_t t = 0; t < run; ++t, wk += s.k) acc += src[i * b.pitch + t] * *wk;
      if (q == 0 || acc > best || acc != acc) {
        best = acc;
        arg = static_cast<uint8_t>(q);
      }
    }
    y[k] = best;
    am[k] = arg;
  }
}

OSPREY_CLONES void forward_row(const ConvPoolShape& s, const Band& b, const float* wt,
                               const float* bias, float* y, uint8_t* am) {
  const int ow = s.ow();
  for (int p = 0; p < ow; ++p, y += s.k, am += s.k) {
    const float* base = b.data.data() + p * b.column;
    int k0 = 0;
    for (; k0 + 2 * kL <= s.k; k0 += 2 * kL) pool_block<2>(s, b, base, wt, bias, k0, y, am);
    for (; k0 + kL <= s.k; k0 += kL) pool_block<1>(s, b, base, wt, bias, k0, y, am);
    pool_tail(s, b, base, wt, bias, k0, y, am);
  }
}

// TB taps x KV vectors of channels of the weight gradient over a row's (pixel, window
// position) entries: per entry, KV loads of the masked dY and TB broadcasts feed TB * KV
// multiply-adds.
template <int TB, int KV>
OSPREY_INLINE void grad_tile(const Band& b, const int64_t* entry, int64_t entries, const float* g,
                             int k, int64_t t0, int k0, float* dwt) {
  Vec16 acc[TB][KV];
  for (int q = 0; q < TB; ++q)
    for (int v = 0; v < KV; ++v) vload(acc[q][v], dwt + (t0 + q) * k + k0 + v * kL);
  for (int64_t e = 0; e < entries; ++e) {
    Vec16 gv[KV];
    for (int v = 0; v < KV; ++v) vload(gv[v], g + e * k + k0 + v * kL);
    const float* src = b.data.data() + entry[e];
    for (int q = 0; q < TB; ++q) {
      const float xv = src[b.tap[t0 + q]];
      for (int v = 0; v < KV; ++v) acc[q][v] += xv * gv[v];
    }
  }
  for (int q = 0; q < TB; ++q)
    for (int v = 0; v < KV; ++v) vstore(dwt + (t0 + q) * k + k0 + v * kL, acc[q][v]);
}

template <int KV>
OSPREY_INLINE void grad_blocks(const Band& b, const int64_t* entry, int64_t entries, const float* g,
                               int k, float* dwt, int& k0) {
  const int64_t taps = static_cast<int64_t>(b.tap.size());
  for (; k0 + KV * kL <= k; k0 += KV * kL) {
    int64_t t = 0;
    for (; t + 4 <= taps; t += 4) grad_tile<4, KV>(b, entry, entries, g, k, t, k0, dwt);
    for (; t < taps; ++t) grad_tile<1, KV>(b, entry, entries, g, k, t, k0, dwt);
  }
}

// One pooled row's contribution to dwt[tap][k] and db[k] (dwt + taps * K). g is the row's dY
// spread over the window positions, [pixel][position][K], zero where the position lost.
OSPREY_CLONES void grad_row(const ConvPoolShape& s, const Band& b, const int64_t* entry,
                            const float* dy, const uint8_t* am, float* g, float* dwt) {
  const int64_t positions = static_cast<int64_t>(b.window.size()), entries = s.ow() * positions;
  for (int p = 0; p < s.ow(); ++p)
    for (int64_t q = 0; q < positions; ++q) {
      float* gq = g + (p * positions + q) * s.k;
      const float* d = dy + static_cast<int64_t>(p) * s.k;
      const uint8_t* a = am + static_cast<int64_t>(p) * s.k;
      for (int k = 0; k < s.k; ++k) gq[k] = a[k] == q ? d[k] : 0.0f;
    }
  int k0 = 0;
  grad_blocks<2>(b, entry, entries, g, s.k, dwt, k0);
  grad_blocks<1>(b, entry, entries, g, s.k, dwt, k0);
  for (size_t t = 0; t < b.tap.size() && k0 < s.k; ++t)
    for (int k = k0; k < s.k; ++k)
      for (int64_t e = 0; e < entries; ++e)
        dwt[t * s.k + k] += b.data[entry[e] + b.tap[t]] * g[e * s.k + k];
  float* db = dwt + b.tap.size() * s.k;
  for (int p = 0; p < s.ow(); ++p)
    for (int k = 0; k < s.k; ++k) db[k] += dy[static_cast<int64_t>(p) * s.k + k];
}

}  // namespace

void conv2d_max_pool2d_forward(const ConvPoolShape& s, const float* x, const float* w,
                               const float* bias, float* y, uint8_t* argmax) {
  const int oh = s.oh(), ow = s.ow();
  if (s.n <= 0 || s.k <= 0 || oh <= 0 || ow <= 0) return;
  const int64_t taps = static_cast<int64_t>(s.kh) * s.kw * s.c;
  std::vector<float> wt(static_cast<size_t>(taps * s.k));  // [tap][K]
  for (int k = 0; k < s.k; ++k)
    for (int64_t t = 0; t < taps; ++t) wt[t * s.k + k] = w[k * taps + t];
  const int64_t img_in = static_cast<int64_t>(s.h) * s.w * s.c, row_out = int64_t{ow} * s.k;
  const int64_t work = int64_t{s.n} * oh * row_out * s.pool * s.pool * taps;
#pragma omp parallel if (work > kParallelMin)
  {
    Band b(s);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < int64_t{s.n} * oh; ++r) {
      b.load(s, x + (r / oh) * img_in, static_cast<int>(r % oh));
      forward_row(s, b, wt.data(), bias, y + r * row_out, argmax + r * row_out);
    }
  }
}

// Each thread sums an image in float (short sums), then folds it into double totals, so long
// batches do not drift; the totals are merged once at the end.
void conv2d_max_pool2d_backward(const ConvPoolShape& s, const float* x, const float* dy,
                                const uint8_t* argmax, float* dw, float* db) {
  const int oh = s.oh(), ow = s.ow();
  if (s.n <= 0 || s.k <= 0 || oh <= 0 || ow <= 0 || (!dw && !db)) return;
  const int64_t taps = static_cast<int64_t>(s.kh) * s.kw * s.c, nw = taps * s.k;
  const int64_t img_in = static_cast<int64_t>(s.h) * s.w * s.c, row_out = int64_t{ow} * s.k;
  const int64_t positions = int64_t{s.pool} * s.pool;
  const int64_t work = int64_t{s.n} * oh * row_out * positions * taps;
#pragma omp parallel if (work > kParallelMin)
  {
    Band b(s);
    std::vector<int64_t> entry;  // band offset of each (pixel, window position)
    for (int p = 0; p < ow; ++p)
      for (int64_t q = 0; q < positions; ++q) entry.push_back(p * b.column + b.window[q]);
    std::vector<float> g(static_cast<size_t>(ow * positions * s.k)), part(nw + s.k);
    std::vector<double> total(nw + s.k, 0.0);
#pragma omp for schedule(static) nowait
    for (int img = 0; img < s.n; ++img) {
      std::fill(part.begin(), part.end(), 0.0f);
      for (int r = 0; r < oh; ++r) {
        const int64_t off = (int64_t{img} * oh + r) * row_out;
        b.load(s, x + img * img_in, r);
        grad_row(s, b, entry.data(), dy + off, argmax + off, g.data(), part.data());
      }
      for (int64_t t = 0; t < nw + s.k; ++t) total[t] += part[t];
    }
#pragma omp critical
    {
      if (dw)
        for (int k = 0; k < s.k; ++k)
          for (int64_t t = 0; t < taps; ++t)
            dw[k * taps + t] += static_cast<float>(total[t * s.k + k]);
      if (db)
        for (int k = 0; k < s.k; ++k) db[k] += static_cast<float>(total[nw + k]);
    }
  }
}

}  // namespace osprey::cpu
