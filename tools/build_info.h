// What this binary is: version, the git commit it was built from, and its build options, as
// recorded in every run's config.json and printed by `osprey --version`.
#pragma once
#include <string>

namespace osprey::tools {

struct BuildInfo {
  std::string version;  // the project version, e.g. "0.1.0"
  std::string commit;   // full hash, "-dirty" when tracked files differed; "unknown" without git
  std::string
      options;  // e.g. "cuda=on mpi=on nccl=on gemm=onednn build=Release compiler=GNU 12.2.0"
};

const BuildInfo& build_info();

}  // namespace osprey::tools
