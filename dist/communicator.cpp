#include "dist/communicator.h"

#include <climits>
#include <vector>

#include "engine/device.h"
#include "engine/error.h"

#ifdef OSPREY_HAVE_MPI
#include <mpi.h>
#endif

namespace osprey::dist {
namespace {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* name() const override { return "local"; }
  void allreduce_average_async(float*, int64_t) override {}
  void wait_all() override {}
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(int64_t*, int64_t) override {}
  void broadcast(float*, int64_t, int) override {}
  void broadcast(int64_t*, int64_t, int) override {}
  void send(const float*, int64_t, int dest) override { no_peer(dest); }
  void recv(float*, int64_t, int source) override { no_peer(source); }
  void send(const int64_t*, int64_t, int dest) override { no_peer(dest); }
  void recv(int64_t*, int64_t, int source) override { no_peer(source); }
  std::unique_ptr<Communicator> split(int, int) override {
    return std::make_unique<LocalCommunicator>();
  }

 private:
  [[noreturn]] static void no_peer(int rank) {
    fail("local communicator: there is no rank ", rank, " to talk to (world size 1)");
  }
};

#ifdef OSPREY_HAVE_MPI

void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("MPI error in ", call, " at ", file, ":", line, ": ", std::string(text, size_t(len)));
}
#define MPI_CHECK(call) mpi_check((call), #call, __FILE__, __LINE__)

// Page-locked host memory for GPU buffers: this MPI is not assumed CUDA-aware, so they travel
// through host memory (which also lets several ranks share one GPU, where NCCL refuses). Grow
// only and reused every step: pinning memory costs far more than the copies.
class PinnedStage {
 public:
  PinnedStage() = default;
  ~PinnedStage() {
    if (host_) pinned_free(host_);
  }
  PinnedStage(const PinnedStage&) = delete;
  PinnedStage& operator=(const PinnedStage&) = delete;
  float* host(int64_t count) {
    if (capacity_ < count) {
      if (host_) pinned_free(host_);
      host_ = nullptr;  // a failed allocation must not leave a freed pointer behind
      host_ = static_cast<float*>(pinned_alloc(size_t(count) * sizeof(float)));
      capacity_ = count;
    }
    return host_;
  }

 private:
  float* host_ = nullptr;
  int64_t capacity_ = 0;
};

size_t float_bytes(int64_t count) {
  return size_t(count) * sizeof(float);
}

int mpi_count(int64_t count) {
  OSPREY_CHECK(count >= 0 && count <= INT_MAX, "MPI collective of ", count,
               " elements exceeds MPI's int count");
  return int(count);
}

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of comm unless it is MPI_COMM_WORLD.
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    // Never leave a collective in flight behind (an exception unwound past wait_all).
    for (auto& p : pending_) MPI_Wait(&p.request, MPI_STATUS_IGNORE);
    if (comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "mpi"; }

  void allreduce_average_async(float* data, int64_t count) override {
    Pending p{data, count, MPI_REQUEST_NULL, nullptr};
    if (is_device_pointer(data)) {
      // One stage per bucket in flight, the same ones every step.
      if (stages_.size() <= pending_.size()) stages_.push_back(std::make_unique<PinnedStage>());
      p.device = data;
      p.data = stages_[pending_.size()]->host(count);
      copy_bytes(p.data, data, float_bytes(count));
    }
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p.data, mpi_count(count), MPI_FLOAT, MPI_SUM, comm_,
                             &p.request));
    pending_.push_back(std::move(p));
  }
  void wait_all() override {
    const float inv = 1.0f / float(size_);
    for (auto& p : pending_) {
      MPI_CHECK(MPI_Wait(&p.request, MPI_STATUS_IGNORE));
      for (int64_t i = 0; i < p.count; ++i) p.data[i] *= inv;
      if (p.device) copy_bytes(p.device, p.data, float_bytes(p.count));
    }
    pending_.clear();
  }
  void allreduce_sum(double* data, int64_t count) override {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_DOUBLE, MPI_SUM, comm_));
  }
  void allreduce_sum(int64_t* data, int64_t count) override {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_INT64_T, MPI_SUM, comm_));
  }
  void broadcast(float* data, int64_t count, int root) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      copy_bytes(host, data, float_bytes(count));
      MPI_CHECK(MPI_Bcast(host, mpi_count(count), MPI_FLOAT, root, comm_));
      copy_bytes(data, host, float_bytes(count));
      return;
    }
    MPI_CHECK(MPI_Bcast(data, mpi_count(count), MPI_FLOAT, root, comm_));
  }
  void broadcast(int64_t* data, int64_t count, int root) override {
    MPI_CHECK(MPI_Bcast(data, mpi_count(count), MPI_INT64_T, root, comm_));
  }
  void send(const float* data, int64_t count, int dest) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      copy_bytes(host, data, float_bytes(count));
      MPI_CHECK(MPI_Send(host, mpi_count(count), MPI_FLOAT, dest, 0, comm_));
      return;
    }
    MPI_CHECK(MPI_Send(data, mpi_count(count), MPI_FLOAT, dest, 0, comm_));
  }
  void recv(float* data, int64_t count, int source) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      MPI_CHECK(MPI_Recv(host, mpi_count(count), MPI_FLOAT, source, 0, comm_, MPI_STATUS_IGNORE));
      copy_bytes(data, host, float_bytes(count));
      return;
    }
    MPI_CHECK(MPI_Recv(data, mpi_count(count), MPI_FLOAT, source, 0, comm_, MPI_STATUS_IGNORE));
  }
  void send(const int64_t* data, int64_t count, int dest) override {
    MPI_CHECK(MPI_Send(data, mpi_count(count), MPI_INT64_T, dest, 0, comm_));
  }
  void recv(int64_t* data, int64_t count, int source) override {
    MPI_CHECK(MPI_Recv(data, mpi_count(count), MPI_INT64_T, source, 0, comm_, MPI_STATUS_IGNORE));
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    MPI_CHECK(MPI_Comm_split(comm_, color, key, &sub));
    return std::make_unique<MpiCommunicator>(sub);
  }

 private:
  struct Pending {
    float* data;  // the host buffer the reduction runs on (a stage, for a GPU buffer)
    int64_t count;
    MPI_Request request;
    float* device;  // the GPU buffer the result goes back to, or null
  };
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<Pending> pending_;
  std::vector<std::unique_ptr<PinnedStage>> stages_;  // by position among the pending
  PinnedStage blocking_stage_;                        // broadcasts and point-to-point
};

#endif  // OSPREY_HAVE_MPI

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

std::unique_ptr<Communicator> make_mpi_communicator(const World& world) {
#ifdef OSPREY_HAVE_MPI
  OSPREY_CHECK(world.mpi, "MPI communicator requested but MPI is not initialised");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
#else
  (void)world;
  fail("this osprey was built without MPI (apt-get install libopenmpi-dev and rebuild)");
#endif
}

std::unique_ptr<Communicator> make_communicator(const World& world) {
  if (world.mpi && world.size > 1) return make_mpi_communicator(world);
  return make_local_communicator();
}

}  // namespace osprey::dist
