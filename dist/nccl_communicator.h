// NCCL for GPU buffers: all-reduces (averaged inside NCCL, ncclAvg) and broadcasts run on the
// communicator's own stream, ordered after the compute stream's work by events, so gradient
// buckets overlap the rest of backward. Host buffers (metric sums, int64 counters) go through
// the MPI communicator it was built from, which also carried NCCL's unique id.
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace osprey::dist {

bool built_with_nccl();
// One GPU per rank (NCCL refuses two ranks on one GPU): call after the process picked its GPU.
// Takes ownership of `host`, an MPI communicator over the same ranks.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace osprey::dist
