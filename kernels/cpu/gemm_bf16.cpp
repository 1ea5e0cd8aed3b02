#include "kernels/cpu/gemm_bf16.h"

#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

namespace osprey::cpu {
namespace {

struct Key {
  bool ta, tb, accumulate, bf16_out;
  int64_t m, n, k, lda, ldb, ldc;
  bool operator<(const Key& o) const {
    return std::tie(ta, tb, accumulate, bf16_out, m, n, k, lda, ldb, ldc) <
           std::tie(o.ta, o.tb, o.accumulate, o.bf16_out, o.m, o.n, o.k, o.lda, o.ldb, o.ldc);
  }
};

struct Matmul {
  dnnl::memory::desc a, b, c;
  dnnl::matmul primitive;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A row-major rows x cols operand stored with leading dimension ld, or its transpose.
dnnl::memory::desc operand(int64_t rows, int64_t cols, int64_t ld, bool transposed,
                           dnnl::memory::data_type type) {
  const dnnl::memory::dims strides =
      transposed ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1};
  return dnnl::memory::desc({rows, cols}, type, strides);
}

Matmul make_matmul(const Key& key) {
  using dt = dnnl::memory::data_type;
  Matmul mm;
  mm.a = operand(key.m, key.k, key.lda, key.ta, dt::bf16);
  mm.b = operand(key.k, key.n, key.ldb, key.tb, dt::bf16);
  mm.c = operand(key.m, key.n, key.ldc, false, key.bf16_out ? dt::bf16 : dt::f32);
  dnnl::primitive_attr attr;
  if (key.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::desc desc(mm.a, mm.b, mm.c);
  mm.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, cpu_engine()));
  return mm;
}

const Matmul& cached_matmul(const Key& key) {
  static std::mutex mutex;
  static std::map<Key, Matmul> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_matmul(key)).first;
  return it->second;
}

// Runs the cached primitive of key on a, b and c (float or bf16, as the key says).
void run_matmul(const Key& key, const bf16* a, const bf16* b, void* c) {
  const Matmul& mm = cached_matmul(key);
  dnnl::engine& engine = cpu_engine();
  dnnl::memory am(mm.a, engine, const_cast<bf16*>(a)), bm(mm.b, engine, const_cast<bf16*>(b)),
      cm(mm.c, engine, c);
  dnnl::stream stream(engine);
  mm.primitive.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  stream.wait();
}

}  // namespace

bool native_bf16_gemm() {
  static const bool native = [] {
    const unsigned isa = unsigned(dnnl_get_effective_cpu_isa());
    const unsigned bf16 = unsigned(dnnl_cpu_isa_avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return native;
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const bf16* a,
               int64_t lda, const bf16* b, int64_t ldb, bool accumulate, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // an empty sum: C = 0, or C unchanged when accumulating
    for (int64_t i = 0; i < m && !accumulate; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0f;
    return;
  }
  run_matmul({trans_a, trans_b, accumulate, false, m, n, k, lda, ldb, ldc}, a, b, c);
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const bf16* a,
               int64_t lda, const bf16* b, int64_t ldb, bf16* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = bf16{0};
    return;
  }
  run_matmul({trans_a, trans_b, false, true, m, n, k, lda, ldb, ldc}, a, b, c);
}

}  // namespace osprey::cpu
