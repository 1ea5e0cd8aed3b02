// Collectives behind one interface, so the trainer and the gradient bucketer do not care
// whether gradients travel over MPI (CPU buffers), NCCL (GPU buffers, a later backend) or
// nowhere (one rank). Counts are in elements, never bytes.
#pragma once
#include <cstdint>
#include <memory>

#include "dist/world.h"

namespace osprey::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* name() const = 0;

  // Starts an in-place all-reduce that leaves the average over ranks in data[0, count). The
  // buffer must stay untouched until wait_all() returns.
  virtual void allreduce_average_async(float* data, int64_t count) = 0;
  virtual void wait_all() = 0;
  // Blocking in-place sums, for metrics (exact counts and loss sums).
  virtual void allreduce_sum(double* data, int64_t count) = 0;
  virtual void allreduce_sum(int64_t* data, int64_t count) = 0;
  virtual void broadcast(float* data, int64_t count, int root) = 0;
  virtual void broadcast(int64_t* data, int64_t count, int root) = 0;
  // Blocking point-to-point transfers (pipeline stages pass activations and gradients).
  virtual void send(const float* data, int64_t count, int dest) = 0;
  virtual void recv(float* data, int64_t count, int source) = 0;
  virtual void send(const int64_t* data, int64_t count, int dest) = 0;
  virtual void recv(int64_t* data, int64_t count, int source) = 0;
  // The ranks with the same color form a new communicator, ordered by key (MPI_Comm_split).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// How long one MPI operation may wait for the other ranks before the rank fails naming itself
// and the operation (the CLI then aborts the job): OSPREY_COLLECTIVE_TIMEOUT_S seconds, 0 = no
// limit, kDefaultCollectiveTimeoutS when unset. A malformed value is an error naming the variable.
constexpr double kDefaultCollectiveTimeoutS = 300.0;
double collective_timeout_s();

// World size 1: every collective is the identity.
std::unique_ptr<Communicator> make_local_communicator();
// MPI_COMM_WORLD of an initialised MPI world (world.mpi); fails in a build without MPI.
std::unique_ptr<Communicator> make_mpi_communicator(const World& world);
// The MPI communicator when the process runs under an MPI launcher, else the local one.
std::unique_ptr<Communicator> make_communicator(const World& world);

}  // namespace osprey::dist
