// What the command line tells a user who mistyped: a usage error (exit code 2, as opposed to 1
// for a run, file or data problem) and the nearest valid word by edit distance.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.h"

namespace osprey::tools {

// Something wrong in what the user typed: an unknown command, option or config key, a value of
// the wrong type or outside its allowed set. main() maps it to exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

template <typename... Parts>
[[noreturn]] void usage_fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw UsageError(os.str());
}

// OSPREY_CHECK for what the user typed: throws UsageError.
#define OSPREY_USAGE_CHECK(cond, ...)                      \
  do {                                                     \
    if (!(cond)) ::osprey::tools::usage_fail(__VA_ARGS__); \
  } while (0)

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbouring characters cost 1 each ("trian" is 1 from "train").
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate the user most likely meant, or "" when none is close: within an edit distance
// of a third of the word's length (at least 1), or, failing that, one that starts the word or
// that the word starts at a '_' or '-' boundary ("lr_rate" -> "lr", "batch" -> "batch_size").
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" for the closest match, or "" when there is none.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace osprey::tools
