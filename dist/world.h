// Who this process is among the ranks of a job. With MPI (and a launcher such as mpirun or
// srun) the ranks come from MPI; otherwise this is the only rank.
#pragma once

namespace osprey::dist {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this node (picks the GPU)
  int local_size = 1;
  bool mpi = false;
};

// Initialises MPI (MPI_THREAD_FUNNELED or better) when this build has it and the process was
// started by an MPI launcher; safe to call more than once.
World init_world(int* argc, char*** argv);
void finalize_world();
// After an error on one rank: stops every rank of the job (MPI_Abort) so none waits forever in
// a collective. Does nothing in a single-process run.
void abort_world(int code);
bool built_with_mpi();

}  // namespace osprey::dist
