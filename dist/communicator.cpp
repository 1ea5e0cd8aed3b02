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

// A page-locked host copy of a GPU buffer: this MPI is not assumed CUDA-aware, so GPU buffers
// travel through host memory (which also lets several ranks share one GPU, where NCCL refuses).
class HostStage {
 public:
  HostStage(float* data, int64_t count)
      : device_(data), count_(count), host_(static_cast<float*>(pinned_alloc(bytes()))) {}
  ~HostStage() { pinned_free(host_); }
  HostStage(const HostStage&) = delete;
  HostStage& operator=(const HostStage&) = delete;
  float* download() {
    copy_bytes(host_, device_, bytes());
    return host_;
  }
  void upload() { copy_bytes(device_, host_, bytes()); }
  float* host() const { return host_; }

 private:
  size_t bytes() const { return size_t(count_) * sizeof(float); }
  float* device_;
  int64_t count_;
  float* host_;
};

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
      p.stage = std::make_unique<HostStage>(data, count);
      p.data = p.stage->download();
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
      if (p.stage) p.stage->upload();
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
      HostStage stage(data, count);
      MPI_CHECK(MPI_Bcast(stage.download(), mpi_count(count), MPI_FLOAT, root, comm_));
      stage.upload();
      return;
    }
    MPI_CHECK(MPI_Bcast(data, mpi_count(count), MPI_FLOAT, root, comm_));
  }
  void broadcast(int64_t* data, int64_t count, int root) override {
    MPI_CHECK(MPI_Bcast(data, mpi_count(count), MPI_INT64_T, root, comm_));
  }
  void send(const float* data, int64_t count, int dest) override {
    if (is_device_pointer(data)) {
      HostStage stage(const_cast<float*>(data), count);
      MPI_CHECK(MPI_Send(stage.download(), mpi_count(count), MPI_FLOAT, dest, 0, comm_));
      return;
    }
    MPI_CHECK(MPI_Send(data, mpi_count(count), MPI_FLOAT, dest, 0, comm_));
  }
  void recv(float* data, int64_t count, int source) override {
    if (is_device_pointer(data)) {
      HostStage stage(data, count);
      MPI_CHECK(
          MPI_Recv(stage.host(), mpi_count(count), MPI_FLOAT, source, 0, comm_, MPI_STATUS_IGNORE));
      stage.upload();
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
    float* data;  // the host buffer the reduction runs on (the stage's, for a GPU buffer)
    int64_t count;
    MPI_Request request;
    std::unique_ptr<HostStage> stage;
  };
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<Pending> pending_;
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
