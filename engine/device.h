// Which device a run uses, and the small device services the engine needs (synchronisation,
// memory figures). Builds without CUDA answer "no GPU" and refuse cuda with a clear error.
#pragma once
#include <cstdint>
#include <string>

#include "engine/dtype.h"

namespace osprey {

bool cuda_built();      // this binary has the CUDA backend
bool cuda_available();  // ... and a GPU is present
// "cpu", "cuda" or "auto" (the GPU when there is one); fails clearly for anything else or for
// cuda without a GPU.
Device resolve_device(const std::string& name);
// Makes this process use GPU `index` (a node-local rank's GPU); fails clearly when the node has
// fewer GPUs.
void select_gpu(int index);
// A short description: "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)".
std::string device_description(Device device);
// Lets fp32 GEMMs on the GPU (1x1 convolutions, linear layers, im2col convolutions) use TF32
// tensor cores: ~10 mantissa bits per product, fp32 accumulation (PyTorch's default for
// cuDNN convolutions). Off by default; no effect on the cpu.
void allow_tf32(bool on);
// Waits until queued work on the device has finished (no-op on cpu).
void synchronize(Device device);
// Device memory in use at most since the last reset (0 on cpu).
uint64_t peak_device_memory(Device device);
void reset_peak_device_memory(Device device);

}  // namespace osprey
