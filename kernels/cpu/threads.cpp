#include "kernels/cpu/threads.h"

#include <cblas.h>
#include <omp.h>

namespace osprey::cpu {

int set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace osprey::cpu
