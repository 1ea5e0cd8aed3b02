// The CPU thread count used by our OpenMP loops and by OpenBLAS.
#pragma once

namespace osprey::cpu {

// n <= 0 means every core. Returns the count in effect.
int set_num_threads(int n);
int num_threads();

}  // namespace osprey::cpu
