// Shared by the libFuzzer targets: the readers under test take paths, so each input is written
// to one temporary file per process (in TMPDIR, /tmp by default) and read back from there. An
// osprey::Error is the expected answer to bad input; anything else that escapes (another
// exception, a crash, a sanitizer report, a hang past -timeout) is a finding.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/error.h"

namespace osprey::fuzz {

inline std::string scratch_path(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/osprey_fuzz_" + tag + "_" +
         std::to_string(getpid());
}

inline void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the fuzzer's own scratch space must work
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Runs fn, accepting osprey::Error (a clear refusal) as a normal outcome.
template <typename Fn>
int expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const osprey::Error&) {
  }
  return 0;
}

}  // namespace osprey::fuzz
