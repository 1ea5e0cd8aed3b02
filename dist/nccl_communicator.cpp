#include "dist/nccl_communicator.h"

#include <cstring>

#include "engine/device.h"
#include "kernels/error.h"

#ifdef OSPREY_HAVE_NCCL
#include <nccl.h>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/runtime.h"
#endif

namespace osprey::dist {

#ifdef OSPREY_HAVE_NCCL
namespace {

#define OSPREY_NCCL_CHECK(call) check((call), #call, __FILE__, __LINE__)

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0);
    ncclUniqueId id;
    if (host_->rank() == 0) OSPREY_NCCL_CHECK(ncclGetUniqueId(&id));
    host_->broadcast(reinterpret_cast<int64_t*>(&id), sizeof id / sizeof(int64_t), 0);
    OSPREY_NCCL_CHECK(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()));
    OSPREY_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    OSPREY_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    // After an error the communicator may be wedged: abort it instead of a collective destroy.
    if (failed_)
      ncclCommAbort(comm_);
    else
      ncclCommDestroy(comm_);
    cudaEventDestroy(event_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const char* name() const override { return "nccl"; }

  void allreduce_average_async(float* data, int64_t count) override {
    require_device(data, "all-reduce");
    after_compute();
    OSPREY_NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclAvg, comm_, stream_));
  }
  // The compute stream (the optimizer) waits for the reductions; the host does not.
  void wait_all() override {
    OSPREY_CUDA_CHECK(cudaEventRecord(event_, stream_));
    OSPREY_CUDA_CHECK(cudaStreamWaitEvent(cuda::compute_stream(), event_, 0));
    check_async();
  }
  void allreduce_sum(double* data, int64_t count) override { host_->allreduce_sum(data, count); }
  void allreduce_sum(int64_t* data, int64_t count) override { host_->allreduce_sum(data, count); }
  void broadcast(float* data, int64_t count, int root) override {
    if (!is_device_pointer(data)) return host_->broadcast(data, count, root);
    after_compute();
    OSPREY_NCCL_CHECK(ncclBroadcast(data, data, size_t(count), ncclFloat, root, comm_, stream_));
    wait_all();
  }
  void broadcast(int64_t* data, int64_t count, int root) override {
    host_->broadcast(data, count, root);
  }
  void send(const float* data, int64_t count, int dest) override {
    require_device(data, "send");
    after_compute();
    OSPREY_NCCL_CHECK(ncclSend(data, size_t(count), ncclFloat, dest, comm_, stream_));
    OSPREY_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void recv(float* data, int64_t count, int source) override {
    require_device(data, "recv");
    after_compute();
    OSPREY_NCCL_CHECK(ncclRecv(data, size_t(count), ncclFloat, source, comm_, stream_));
    wait_all();
  }
  void send(const int64_t* data, int64_t count, int dest) override {
    host_->send(data, count, dest);
  }
  void recv(int64_t* data, int64_t count, int source) override { host_->recv(data, count, source); }
  std::unique_ptr<Communicator> split(int color, int key) override {
    return std::make_unique<NcclCommunicator>(host_->split(color, key));
  }

 private:
  // The NCCL member of the error-check family (kernels/error.h), with this process's rank.
  void check(ncclResult_t r, const char* call, const char* file, int line) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    failed_ = true;
    const char* hint =
        r == ncclSystemError || r == ncclRemoteError ? " (a peer failed or the network did)" : "";
    throw_call_error(
        "NCCL", call, file, line,
        std::string(ncclGetErrorString(r)) + " on rank " + std::to_string(host_->rank()) + hint);
  }
  void check_async() {
    ncclResult_t async = ncclSuccess;
    OSPREY_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    check(async, "an asynchronous NCCL operation", __FILE__, __LINE__);
  }
  void require_device(const void* p, const char* what) {
    OSPREY_CHECK(is_device_pointer(p), "nccl communicator: ", what,
                 " of a host buffer (NCCL moves GPU buffers; use the MPI communicator)");
  }
  // The collective reads what the compute stream has written so far.
  void after_compute() {
    OSPREY_CUDA_CHECK(cudaEventRecord(event_, cuda::compute_stream()));
    OSPREY_CUDA_CHECK(cudaStreamWaitEvent(stream_, event_, 0));
  }

  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t event_ = nullptr;
  bool failed_ = false;
};

}  // namespace

bool built_with_nccl() {
  return true;
}

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

#else

bool built_with_nccl() {
  return false;
}

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator>) {
  fail("this osprey was built without NCCL (it needs CUDA and MPI)");
}

#endif

std::unique_ptr<Communicator> make_gradient_communicator(Communicator& comm, Device device,
                                                         const std::string& kind) {
  OSPREY_CHECK(kind == "auto" || kind == "nccl" || kind == "mpi", "communicator '", kind,
               "' is not one of auto, nccl, mpi");
  if (device != Device::cuda || comm.size() == 1 || kind == "mpi") return nullptr;
  OSPREY_CHECK(built_with_nccl() || kind == "auto",
               "communicator nccl: this osprey was built without NCCL");
  if (!built_with_nccl()) return nullptr;
  return make_nccl_communicator(comm.split(0, comm.rank()));
}

}  // namespace osprey::dist
