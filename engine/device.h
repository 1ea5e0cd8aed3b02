// Which device a run uses, and the small device services the engine needs (synchronisation,
// memory figures). Builds without CUDA answer "no GPU" and refuse cuda with a clear error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/dtype.h"
#include "engine/tensor.h"

namespace osprey {

bool cuda_built();      // this binary has the CUDA backend
bool cuda_available();  // ... and a GPU is present
int gpu_count();        // GPUs visible to this process (0 without CUDA)
// "cpu", "cuda" or "auto" (the GPU when there is one); fails clearly for anything else or for
// cuda without a GPU.
Device resolve_device(const std::string& name);
// The GPU this process will use when a command asks for cuda: its node-local rank (one GPU per
// rank). resolve_device() then fails clearly when the node has fewer GPUs than ranks, unless
// OSPREY_SHARE_GPUS=1 lets ranks share them (local rank modulo the GPU count: tests on a
// one-GPU machine, through the MPI communicator; NCCL refuses two ranks on one GPU).
void set_local_rank_gpu(int local_rank);
// Makes this process use GPU `index` now (fails clearly when there is no such GPU).
void select_gpu(int index);
// A short description: "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)".
std::string device_description(Device device);
// Lets fp32 GEMMs on the GPU (1x1 convolutions, linear layers, im2col convolutions) use TF32
// tensor cores: ~10 mantissa bits per product, fp32 accumulation (PyTorch's default for
// cuDNN convolutions). Off by default; no effect on the cpu.
void allow_tf32(bool on);
// Where a pointer lives, and copies in any direction that wait for the compute stream (for
// communicators that stage GPU buffers through host memory).
bool is_device_pointer(const void* p);
void copy_bytes(void* dst, const void* src, size_t bytes);
// Page-locked host memory (plain memory in a build without CUDA).
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);
// Uploads batches to the GPU asynchronously (pinned staging, a copy stream of its own), so the
// next batch travels while the current step computes.
class BatchUploader {
 public:
  BatchUploader();
  ~BatchUploader();
  BatchUploader(const BatchUploader&) = delete;
  BatchUploader& operator=(const BatchUploader&) = delete;
  // A cuda tensor of `shape` holding host[0, numel); host may be reused at once.
  Tensor upload(const float* host, const Shape& shape);
  // The same for raw bytes: a u8 cuda tensor of `bytes` elements.
  Tensor upload_bytes(const void* host, size_t bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Waits until queued work on the device has finished (no-op on cpu).
void synchronize(Device device);
// Tensor memory in use at most since the last reset (cpu: tensor storage, cached blocks
// excluded).
uint64_t peak_device_memory(Device device);
void reset_peak_device_memory(Device device);

}  // namespace osprey
