// The one error type of Osprey: bad input, bad shapes and failed checks throw osprey::Error with
// a message that names the file, key or shape at fault; the CLI prints it and exits non-zero.
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

}  // namespace osprey

// Checks an invariant of the caller's input; the message pieces are only built on failure.
#define OSPREY_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::osprey::fail(__VA_ARGS__); \
  } while (0)
