#include <cublasLt.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/stream_buffer.cuh"
#include "kernels/cuda/vec.cuh"

namespace osprey::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kThreads = 256;

std::atomic<bool> g_tf32{false};

// Everything the algorithm choice depends on. Pointer alignment is part of it: the heuristic
// otherwise assumes 256-byte aligned operands, and conv chunks and row offsets are not.
struct PlanKey {
  int device;
  GemmType ab, ct;  // element types of A and B, and of C
  bool ta, tb;
  int m, n, k, lda, ldb, ldc;
  bool beta_zero, tf32;
  uint32_t align_a, align_b, align_c;
  auto tie() const {
    return std::tie(device, ab, ct, ta, tb, m, n, k, lda, ldb, ldc, beta_zero, tf32, align_a,
                    align_b, align_c);
  }
  bool operator<(const PlanKey& o) const { return tie() < o.tie(); }
};

// Descriptors live as long as the process: plans are few (one per layer shape) and are reused
// on every step.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo;
};

struct Context {
  std::mutex mu;
  cublasLtHandle_t handle = nullptr;
  std::map<PlanKey, Plan> plans;
  // One workspace per (device, stream): GEMMs on different streams may run concurrently.
  std::map<std::pair<int, cudaStream_t>, void*> workspaces;
};

Context& context() {
  static Context* ctx = [] {
    auto* c = new Context;  // leaked on purpose: no destruction order issues at exit
    OSPREY_CUBLAS_CHECK(cublasLtCreate(&c->handle));
    return c;
  }();
  return *ctx;
}

cudaDataType_t cuda_type(GemmType t) {
  return t == GemmType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

uint32_t element_bytes(GemmType t) {
  return t == GemmType::bf16 ? 2 : 4;
}

// The largest power of two (up to 256) dividing the address; at least one element.
uint32_t alignment(const void* p, GemmType t) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > element_bytes(t) && addr % a != 0) a /= 2;
  return a;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt's first operand is
// our B (its stored column-major view already is B^T when not transposed), the second is our A.
Plan make_plan(cublasLtHandle_t handle, const PlanKey& key) {
  Plan p;
  const cublasOperation_t op_first = key.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = key.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  // bf16 operands: tensor cores with fp32 accumulation (CUBLAS_COMPUTE_32F); TF32 applies only
  // to fp32 operands.
  const cublasComputeType_t compute =
      key.tf32 && key.ab == GemmType::f32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  OSPREY_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F));
  OSPREY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                                     sizeof(op_first)));
  OSPREY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                     &op_second, sizeof(op_second)));
  // Shapes of the stored column-major matrices (before op).
  OSPREY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.la, cuda_type(key.ab), key.tb ? key.k : key.n,
                                                 key.tb ? key.n : key.k, key.ldb));
  OSPREY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.lb, cuda_type(key.ab), key.ta ? key.m : key.k,
                                                 key.ta ? key.k : key.m, key.lda));
  OSPREY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.lc, cuda_type(key.ct), key.n, key.m, key.ldc));

  cublasLtMatmulPreference_t pref = nullptr;
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // The first cuBLASLt operand is our B and the second our A.
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.align_b, sizeof(uint32_t)));
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.align_a, sizeof(uint32_t)));
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.align_c, sizeof(uint32_t)));
  OSPREY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.align_c, sizeof(uint32_t)));
  cublasLtMatmulHeuristicResult_t result;
  std::memset(&result, 0, sizeof(result));
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.la, p.lb, p.lc, p.lc,
                                                           pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  OSPREY_CUBLAS_CHECK(st);
  OSPREY_CHECK(found != 0, "cuBLASLt: no algorithm for gemm m=", key.m, " n=", key.n, " k=", key.k);
  p.algo = result.algo;
  return p;
}

template <typename T>
__global__ void scale_matrix_kernel(int m, int n, float beta, T* __restrict__ c, int ldc) {
  const int64_t total = int64_t(m) * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    T* v = c + (i / n) * ldc + i % n;
    // beta 0 clears NaNs instead of keeping them
    vec::store1(v, beta == 0.0f ? 0.0f : beta * vec::load1(v));
  }
}

__global__ void broadcast_rows_kernel(int64_t rows, int cols, const float* __restrict__ row,
                                      float* __restrict__ y) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = row[i % cols];
}

// Column sums, stage 1: block (bx, by) sums 32 columns over one slab of rows into a double
// partial. Each thread's rows and the shared-memory fold are in a fixed order, so the result
// does not depend on scheduling.
constexpr int kColTile = 32, kRowLanes = 8;

template <typename T>
__global__ void column_partials_kernel(int64_t rows, int cols, int64_t slab,
                                       const T* __restrict__ a, double* __restrict__ part) {
  __shared__ double acc[kRowLanes][kColTile];
  const int col = blockIdx.x * kColTile + threadIdx.x;
  const int64_t r0 = blockIdx.y * slab, r1 = min(rows, r0 + slab);
  double s = 0.0;
  if (col < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) s += vec::load1(a + r * cols + col);
  acc[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    for (int l = 1; l < kRowLanes; ++l) s += acc[l][threadIdx.x];
    part[int64_t(blockIdx.y) * cols + col] = s;
  }
}

__global__ void column_finish_kernel(int slabs, int cols, const double* __restrict__ part,
                                     float* __restrict__ out) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  double s = 0.0;
  for (int b = 0; b < slabs; ++b) s += part[int64_t(b) * cols + col];
  out[col] += static_cast<float>(s);
}

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

template <typename T>
void add_column_sums_any(int64_t rows, int cols, const T* a, float* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const int col_blocks = (cols + kColTile - 1) / kColTile;
  // Enough slabs to fill the GPU, but each slab at least 64 rows so stage 2 stays short.
  const int64_t max_slabs = std::max<int64_t>(1, 2048 / col_blocks);
  const int64_t slabs = std::min<int64_t>(max_slabs, (rows + 63) / 64);
  const int64_t slab = (rows + slabs - 1) / slabs;
  const StreamBuffer<double> part_buffer(slabs * cols, stream);
  double* part = part_buffer.get();
  column_partials_kernel<<<dim3(col_blocks, unsigned(slabs)), dim3(kColTile, kRowLanes), 0,
                           stream>>>(rows, cols, slab, a, part);
  OSPREY_CUDA_CHECK(cudaGetLastError());
  column_finish_kernel<<<(cols + kThreads - 1) / kThreads, kThreads, 0, stream>>>(int(slabs), cols,
                                                                                  part, out);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void set_tf32(bool on) {
  g_tf32.store(on);
}

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc, cudaStream_t stream) {
  gemm(GemmType::f32, GemmType::f32, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
       stream);
}

void gemm(GemmType ab, GemmType ct, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
          const void* a, int lda, const void* b, int ldb, float beta, void* c, int ldc,
          cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // cuBLASLt rejects k == 0; the mathematical answer is C = beta * C.
    const int blocks = blocks_for(int64_t(m) * n);
    if (ct == GemmType::bf16)
      scale_matrix_kernel<<<blocks, kThreads, 0, stream>>>(m, n, beta, static_cast<bf16*>(c), ldc);
    else
      scale_matrix_kernel<<<blocks, kThreads, 0, stream>>>(m, n, beta, static_cast<float*>(c), ldc);
    OSPREY_CUDA_CHECK(cudaGetLastError());
    return;
  }
  PlanKey key;
  OSPREY_CUDA_CHECK(cudaGetDevice(&key.device));
  key.ab = ab;
  key.ct = ct;
  key.ta = trans_a;
  key.tb = trans_b;
  key.m = m;
  key.n = n;
  key.k = k;
  key.lda = lda;
  key.ldb = ldb;
  key.ldc = ldc;
  key.beta_zero = beta == 0.0f;
  key.tf32 = g_tf32.load();
  key.align_a = alignment(a, ab);
  key.align_b = alignment(b, ab);
  key.align_c = alignment(c, ct);
  Context& ctx = context();
  const Plan* plan = nullptr;
  void* workspace = nullptr;
  {
    std::lock_guard<std::mutex> lock(ctx.mu);
    auto it = ctx.plans.find(key);
    if (it == ctx.plans.end()) it = ctx.plans.emplace(key, make_plan(ctx.handle, key)).first;
    plan = &it->second;  // std::map nodes never move
    void*& ws = ctx.workspaces[{key.device, stream}];
    if (!ws) OSPREY_CUDA_CHECK(cudaMalloc(&ws, kWorkspaceBytes));
    workspace = ws;
  }
  OSPREY_CUBLAS_CHECK(cublasLtMatmul(ctx.handle, plan->desc, &alpha, b, plan->la, a, plan->lb,
                                     &beta, c, plan->lc, c, plan->lc, &plan->algo, workspace,
                                     kWorkspaceBytes, stream));
}

void broadcast_rows(int64_t rows, int cols, const float* row, float* y, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  broadcast_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(rows, cols, row, y);
  OSPREY_CUDA_CHECK(cudaGetLastError());
}

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* bias,
                    float* y, cudaStream_t stream) {
  if (n <= 0 || out <= 0) return;
  float beta = 0.0f;
  if (bias) {
    // The GEMM accumulates onto the bias (beta = 1), as the CPU op does.
    broadcast_rows(n, out, bias, y, stream);
    beta = 1.0f;
  }
  sgemm(false, true, n, out, in, 1.0f, x, in, w, in, beta, y, out, stream);
}

void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, cudaStream_t stream) {
  if (dx) sgemm(false, false, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in, stream);
  if (dw) sgemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in, stream);
  if (db) add_column_sums(n, out, dy, db, stream);
}

void add_column_sums(int64_t rows, int cols, const float* a, float* out, cudaStream_t stream) {
  add_column_sums_any(rows, cols, a, out, stream);
}

void add_column_sums(int64_t rows, int cols, const bf16* a, float* out, cudaStream_t stream) {
  add_column_sums_any(rows, cols, a, out, stream);
}

}  // namespace osprey::cuda
