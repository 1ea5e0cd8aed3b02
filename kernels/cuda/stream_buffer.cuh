// Scratch device memory for one kernel call: taken from the stream-ordered pool on a stream and
// handed back on that stream when the buffer goes out of scope, also when a check throws in
// between. The free is ordered after the work queued so far, so kernels still reading the
// buffer finish first.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/check.cuh"

namespace osprey::cuda {

template <typename T>
class StreamBuffer {
 public:
  StreamBuffer() = default;
  // count elements (at least one is allocated, so an empty buffer is still a valid pointer).
  StreamBuffer(int64_t count, cudaStream_t stream) : stream_(stream) {
    const size_t n = count > 0 ? size_t(count) : 1;
    OSPREY_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), sizeof(T) * n, stream));
  }
  ~StreamBuffer() { release(); }
  StreamBuffer(StreamBuffer&& other) noexcept : data_(other.data_), stream_(other.stream_) {
    other.data_ = nullptr;
  }
  StreamBuffer& operator=(StreamBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = other.data_, stream_ = other.stream_;
      other.data_ = nullptr;
    }
    return *this;
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;

  T* get() const { return data_; }

 private:
  // A destructor cannot report a failed free; the error is sticky, so the next checked call
  // reports it.
  void release() noexcept {
    if (data_) cudaFreeAsync(data_, stream_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace osprey::cuda
