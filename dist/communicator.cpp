#include "dist/communicator.h"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/device.h"
#include "engine/parse.h"
#include "kernels/error.h"

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

// The MPI member of the error-check family (kernels/error.h).
void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw_call_error("MPI", call, file, line, std::string(text, size_t(len)));
}
#define OSPREY_MPI_CHECK(call) mpi_check((call), #call, __FILE__, __LINE__)

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

// Every MPI call of the communicator is non-blocking and waited for here, so that a rank whose
// peers never arrive (one died, hung, or runs another number of steps) fails naming itself and
// the operation after the timeout instead of waiting forever; the CLI then aborts the job.
class Waiter {
 public:
  explicit Waiter(double timeout_s) : timeout_s_(timeout_s) {}
  double timeout_s() const { return timeout_s_; }
  // Whether a wait has timed out: the ranks are out of step for good.
  bool expired() const { return expired_; }
  // Throws after the timeout; the request is then left behind (MPI cannot cancel a collective).
  void wait(MPI_Request& request, const std::string& what) const {
    bool timed_out = false;
    OSPREY_MPI_CHECK(poll(request, &timed_out));
    expired_ = expired_ || timed_out;
    if (timed_out)
      fail("rank ", world_rank(), ": ", what, " has waited more than ", timeout_s_,
           " s for the other ranks (OSPREY_COLLECTIVE_TIMEOUT_S): a rank has died or hung, or "
           "the ranks run different programs or settings");
  }
  // False when the timeout passed first (or MPI failed); never throws.
  bool wait_quietly(MPI_Request& request) const {
    bool timed_out = false;
    return poll(request, &timed_out) == MPI_SUCCESS && !timed_out;
  }

 private:
  static int world_rank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
  }
  // MPI_Wait with a deadline: an MPI return code, and whether the deadline passed first.
  int poll(MPI_Request& request, bool* timed_out) const {
    using clock = std::chrono::steady_clock;
    if (timeout_s_ <= 0) return MPI_Wait(&request, MPI_STATUS_IGNORE);
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      int done = 0;
      int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS || done) return rc;
      const auto now = clock::now();
      if (now >= deadline) {
        *timed_out = true;
        return MPI_SUCCESS;
      }
      // Poll as MPI_Wait does for the first second (a non-blocking collective progresses only
      // inside MPI calls, so its rounds must not wait on sleeps), then gently: a wait that long
      // is a rank busy elsewhere (rank 0 writing a checkpoint) or a stalled job.
      if (now - start < std::chrono::seconds(1))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  double timeout_s_;
  mutable bool expired_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of comm unless it is MPI_COMM_WORLD.
  MpiCommunicator(MPI_Comm comm, double timeout_s) : comm_(comm), waiter_(timeout_s) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    // Never leave a collective in flight behind (an exception unwound past wait_all), but
    // never wait past the timeout either: the error that unwinds must reach the CLI, which
    // aborts the job.
    for (auto& p : pending_)
      if (waiter_.expired() || !waiter_.wait_quietly(p.request)) break;
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
    OSPREY_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p.data, mpi_count(count), MPI_FLOAT, MPI_SUM,
                                    comm_, &p.request));
    pending_.push_back(std::move(p));
  }
  void wait_all() override {
    const float inv = 1.0f / float(size_);
    for (auto& p : pending_) {
      waiter_.wait(p.request, "a gradient all-reduce of " + std::to_string(p.count) + " floats");
      for (int64_t i = 0; i < p.count; ++i) p.data[i] *= inv;
      if (p.device) copy_bytes(p.device, p.data, float_bytes(p.count));
    }
    pending_.clear();
  }
  void allreduce_sum(double* data, int64_t count) override {
    MPI_Request r;
    OSPREY_MPI_CHECK(
        MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_DOUBLE, MPI_SUM, comm_, &r));
    waiter_.wait(r, "an all-reduce (sum) of " + std::to_string(count) + " doubles");
  }
  void allreduce_sum(int64_t* data, int64_t count) override {
    MPI_Request r;
    OSPREY_MPI_CHECK(
        MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_INT64_T, MPI_SUM, comm_, &r));
    waiter_.wait(r, "an all-reduce (sum) of " + std::to_string(count) + " integers");
  }
  void broadcast(float* data, int64_t count, int root) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      copy_bytes(host, data, float_bytes(count));
      bcast(host, count, MPI_FLOAT, root);
      copy_bytes(data, host, float_bytes(count));
      return;
    }
    bcast(data, count, MPI_FLOAT, root);
  }
  void broadcast(int64_t* data, int64_t count, int root) override {
    bcast(data, count, MPI_INT64_T, root);
  }
  void send(const float* data, int64_t count, int dest) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      copy_bytes(host, data, float_bytes(count));
      send_to(host, count, MPI_FLOAT, dest);
      return;
    }
    send_to(data, count, MPI_FLOAT, dest);
  }
  void recv(float* data, int64_t count, int source) override {
    if (is_device_pointer(data)) {
      float* host = blocking_stage_.host(count);
      recv_from(host, count, MPI_FLOAT, source);
      copy_bytes(data, host, float_bytes(count));
      return;
    }
    recv_from(data, count, MPI_FLOAT, source);
  }
  void send(const int64_t* data, int64_t count, int dest) override {
    send_to(data, count, MPI_INT64_T, dest);
  }
  void recv(int64_t* data, int64_t count, int source) override {
    recv_from(data, count, MPI_INT64_T, source);
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    OSPREY_MPI_CHECK(MPI_Comm_split(comm_, color, key, &sub));
    return std::make_unique<MpiCommunicator>(sub, waiter_.timeout_s());
  }

 private:
  struct Pending {
    float* data;  // the host buffer the reduction runs on (a stage, for a GPU buffer)
    int64_t count;
    MPI_Request request;
    float* device;  // the GPU buffer the result goes back to, or null
  };
  void bcast(void* data, int64_t count, MPI_Datatype type, int root) {
    MPI_Request r;
    OSPREY_MPI_CHECK(MPI_Ibcast(data, mpi_count(count), type, root, comm_, &r));
    waiter_.wait(
        r, "a broadcast of " + std::to_string(count) + " values from rank " + std::to_string(root));
  }
  void send_to(const void* data, int64_t count, MPI_Datatype type, int dest) {
    MPI_Request r;
    OSPREY_MPI_CHECK(MPI_Isend(data, mpi_count(count), type, dest, 0, comm_, &r));
    waiter_.wait(r, "a send of " + std::to_string(count) + " values to rank " +
                        std::to_string(dest) + " of its pipeline");
  }
  void recv_from(void* data, int64_t count, MPI_Datatype type, int source) {
    MPI_Request r;
    OSPREY_MPI_CHECK(MPI_Irecv(data, mpi_count(count), type, source, 0, comm_, &r));
    waiter_.wait(r, "a receive of " + std::to_string(count) + " values from rank " +
                        std::to_string(source) + " of its pipeline");
  }

  MPI_Comm comm_;
  Waiter waiter_;
  int rank_ = 0, size_ = 1;
  std::vector<Pending> pending_;
  std::vector<std::unique_ptr<PinnedStage>> stages_;  // by position among the pending
  PinnedStage blocking_stage_;                        // broadcasts and point-to-point
};

#endif  // OSPREY_HAVE_MPI

}  // namespace

double collective_timeout_s() {
  const char* text = std::getenv("OSPREY_COLLECTIVE_TIMEOUT_S");
  if (!text) return kDefaultCollectiveTimeoutS;
  return parse_double(text, 0.0, 1e9, "environment variable OSPREY_COLLECTIVE_TIMEOUT_S");
}

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

std::unique_ptr<Communicator> make_mpi_communicator(const World& world) {
#ifdef OSPREY_HAVE_MPI
  OSPREY_CHECK(world.mpi, "MPI communicator requested but MPI is not initialised");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, collective_timeout_s());
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
