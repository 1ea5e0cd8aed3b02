// osprey data: getting the datasets the configs train on, without manual steps.
#include "tools/cli/commands.h"

namespace osprey::cli {

void add_data_commands(CLI::App& app, Commands& commands) {
  auto* data = app.add_subcommand(
      "data",
      "Datasets: download one with checksums (get), or render the typeface set (typefaces)");
  add_data_get_command(data, commands);
  add_data_typefaces_command(data, commands);
}

}  // namespace osprey::cli
