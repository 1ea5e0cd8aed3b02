#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace osprey::cpu {

namespace {

// Column sums of a row-major [rows][cols] matrix added into out. Each thread reduces a block of
// rows into a private double vector (no atomics, and no float drift over long batches).
void add_column_sums(int rows, int cols, const float* a, float* out) {
  if (rows <= 0 || cols <= 0) return;
  if (static_cast<int64_t>(rows) * cols < (1 << 15)) {
    for (int r = 0; r < rows; ++r) {
      const float* row = a + static_cast<int64_t>(r) * cols;
      for (int c = 0; c < cols; ++c) out[c] += row[c];
    }
    return;
  }
#pragma omp parallel
  {
    thread_local std::vector<double> local;
    local.assign(cols, 0.0);
#pragma omp for schedule(static) nowait
    for (int r = 0; r < rows; ++r) {
      const float* row = a + static_cast<int64_t>(r) * cols;
      for (int c = 0; c < cols; ++c) local[c] += row[c];
    }
#pragma omp critical
    for (int c = 0; c < cols; ++c) out[c] += static_cast<float>(local[c]);
  }
}

std::atomic<bool> g_recording{false};
std::mutex g_record_mutex;
std::map<GemmShape, GemmRecord> g_records;

void record(const GemmShape& shape, double seconds) {
  std::lock_guard<std::mutex> lock(g_record_mutex);
  GemmRecord& r = g_records[shape];
  r.shape = shape;
  ++r.calls;
  r.seconds += seconds;
}

void call_dnnl_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                     int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  // oneDNN chooses its kernel from the instruction set it finds at run time (AVX-512, AVX2,
  // ...), so a CPU model name a BLAS does not know cannot drop it to SSE code.
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha,
                                          a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success)
    throw std::runtime_error("dnnl_sgemm " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                             std::to_string(k) + " failed: " + dnnl_status2str(status));
}

}  // namespace

bool GemmShape::operator<(const GemmShape& o) const {
  return std::tie(m, n, k, trans_a, trans_b) < std::tie(o.m, o.n, o.k, o.trans_a, o.trans_b);
}

void record_gemms(bool on) {
  std::lock_guard<std::mutex> lock(g_record_mutex);
  if (on) g_records.clear();
  g_recording = on;
}

std::vector<GemmRecord> recorded_gemms() {
  std::lock_guard<std::mutex> lock(g_record_mutex);
  std::vector<GemmRecord> out;
  for (const auto& kv : g_records) out.push_back(kv.second);
  return out;
}

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // BLAS implementations disagree on k == 0; the mathematical answer is C = beta * C, and
    // beta == 0 must clear NaNs in C rather than propagate them.
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        float& v = c[static_cast<int64_t>(i) * ldc + j];
        v = beta == 0.0f ? 0.0f : beta * v;
      }
    return;
  }
  if (!g_recording) {
    call_dnnl_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  call_dnnl_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  record({trans_a, trans_b, m, n, k},
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* bias,
                    float* y) {
  if (n <= 0 || out <= 0) return;
  float beta = 0.0f;
  if (bias) {
    // Seeding y with the bias and letting the GEMM accumulate (beta = 1) saves a second pass.
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(n) * out > (1 << 15))
    for (int i = 0; i < n; ++i) {
      float* row = y + static_cast<int64_t>(i) * out;
      for (int j = 0; j < out; ++j) row[j] = bias[j];
    }
    beta = 1.0f;
  }
  sgemm(false, true, n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  if (dx) sgemm(false, false, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
  if (dw) sgemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
  if (db) add_column_sums(n, out, dy, db);
}

}  // namespace osprey::cpu
