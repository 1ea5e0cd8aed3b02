// NCCL for GPU buffers: all-reduces (averaged inside NCCL, ncclAvg) and broadcasts run on the
// communicator's own stream, ordered after the compute stream's work by events, so gradient
// buckets overlap the rest of backward. Host buffers (metric sums, int64 counters) go through
// the MPI communicator it was built from, which also carried NCCL's unique id.
#pragma once
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "engine/dtype.h"

namespace osprey::dist {

bool built_with_nccl();
// One GPU per rank (NCCL refuses two ranks on one GPU): call after the process picked its GPU.
// Takes ownership of `host`, an MPI communicator over the same ranks.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

// What averages the gradients of `comm`'s ranks on `device`: for GPU buffers on several ranks,
// NCCL over the same ranks unless `kind` is "mpi" (or NCCL is not built and kind is "auto");
// null means `comm` itself (CPU buffers, one rank, or GPU buffers staged through MPI).
// kind: auto | nccl | mpi.
std::unique_ptr<Communicator> make_gradient_communicator(Communicator& comm, Device device,
                                                         const std::string& kind);

}  // namespace osprey::dist
