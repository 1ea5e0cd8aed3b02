// osprey's reading of its command line on top of CLI11: `osprey help CMD...`, a short usage for
// a missing command, and CLI11's errors rewritten as UsageError with a "did you mean" for a
// mistyped command, option or config key (CLI11's own exit codes 105-109 never reach the shell).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace osprey::tools {

// Parses args (without the program name). Returns -1 when a command is to run, 0 after printing
// help or the version, 2 after printing the short usage because no command was given; throws
// UsageError for anything else wrong. `osprey help A B` reads as `osprey A B --help`.
int parse_command_line(CLI::App& app, const std::vector<std::string>& args);

// "Usage: ..." and the commands of `app`, one line each (the first clause of each description).
std::string short_usage(const CLI::App& app);

}  // namespace osprey::tools
