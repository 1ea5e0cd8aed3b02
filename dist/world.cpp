#include "dist/world.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "kernels/error.h"

#ifdef OSPREY_HAVE_MPI
#include <mpi.h>
#endif

namespace osprey::dist {
namespace {

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(var)) return true;
  return false;
}

}  // namespace

bool built_with_mpi() {
#ifdef OSPREY_HAVE_MPI
  return true;
#else
  return false;
#endif
}

World init_world(int* argc, char*** argv) {
  World w;
#ifdef OSPREY_HAVE_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized && !launched_by_mpi()) return w;
  if (!initialized) {
    int provided = 0;
    OSPREY_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
                 "MPI_Init_thread failed");
  }
  w.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &w.local_rank);
  MPI_Comm_size(local, &w.local_size);
  MPI_Comm_free(&local);
#else
  (void)argc;
  (void)argv;
  OSPREY_CHECK(!launched_by_mpi() || std::getenv("OSPREY_ALLOW_SINGLE_RANK"),
               "this osprey was built without MPI but was started by an MPI launcher; rebuild ",
               "with MPI (apt-get install libopenmpi-dev) or run it directly");
#endif
  return w;
}

void abort_world(int code) {
#ifdef OSPREY_HAVE_MPI
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1) return;
  // MPICH's launcher tears the job down as soon as the abort reaches it and may drop what the
  // ranks wrote to stderr just before (seen under load in CI: the message lost, exit 1 alone).
  // Half a second lets it forward the error, on a path that ends the job anyway.
  std::fflush(nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)code;
#endif
}

void finalize_world() {
#ifdef OSPREY_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
#endif
}

}  // namespace osprey::dist
