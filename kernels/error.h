// The one error type of Osprey: bad input, bad shapes and failed checks throw osprey::Error with
// a message that names the file, key or shape at fault; the CLI prints it and exits non-zero.
// Calls into the libraries below us are checked by one family of macros, OSPREY_CUDA_CHECK and
// OSPREY_CUBLAS_CHECK (kernels/cuda/check.cuh), OSPREY_NCCL_CHECK and OSPREY_MPI_CHECK (dist/),
// whose errors all read "<library> error in <call> at <file>:<line>: <the library's words>".
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace osprey {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: fail("file ", path, ": truncated at ", off).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

// The failure of a checked library call (the OSPREY_*_CHECK macros).
[[noreturn]] inline void throw_call_error(const char* library, const char* call, const char* file,
                                          int line, const std::string& status) {
  fail(library, " error in ", call, " at ", file, ":", line, ": ", status);
}

}  // namespace osprey

// Checks an invariant of the caller's input; the message pieces are only built on failure.
#define OSPREY_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::osprey::fail(__VA_ARGS__); \
  } while (0)
