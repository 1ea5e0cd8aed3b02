#include "kernels/cpu/threads.h"

#include <omp.h>

#include <algorithm>

namespace osprey::cpu {

int set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  // OMP_THREAD_LIMIT caps every OpenMP team (oneDNN's GEMMs run in ours): asking for more
  // would only be refused.
  n = std::min(n, omp_get_thread_limit());
  omp_set_num_threads(n);
  return n;
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace osprey::cpu
