// The osprey command line: train, verify, eval, predict, serve, bench, config, plot, help (each
// command in tools/cli/), and the process around it: signals, MPI, errors and exit codes.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "dist/communicator.h"
#include "dist/world.h"
#include "engine/device.h"
#include "engine/parse.h"
#include "kernels/error.h"
#include "tools/build_info.h"
#include "tools/cli/commands.h"
#include "tools/cli_app.h"
#include "tools/cli_help.h"
#include "tools/cli_suggest.h"
#include "tools/stop_signal.h"

namespace {

using namespace osprey;

constexpr const char* kExitCodes =
    "Exit codes: 0 success; 1 error (a run, file or data problem); 2 usage error (an unknown "
    "command, option or config key, a value of the wrong type or not allowed); 128+N train "
    "stopped by signal N (130: Ctrl-C). 'osprey help COMMAND' shows a command's options.";

int run(int argc, char** argv, dist::Communicator& comm) {
  CLI::App app{"Osprey: a C++/CUDA training engine for image classifiers (MobileNetV2, small CNN)"};
  app.name("osprey");
  const tools::BuildInfo& build = tools::build_info();
  app.set_version_flag("--version", "osprey " + build.version + " (commit " + build.commit + "; " +
                                        build.options + ")");
  app.footer(tools::wrap_words(kExitCodes, 100, 0));
  const cli::Context context{argc, argv, &comm};
  cli::Commands commands;
  cli::add_train_command(app, commands, context);
  cli::add_verify_command(app, commands);
  cli::add_inference_commands(app, commands);
  cli::add_bench_commands(app, commands, context);
  cli::add_config_commands(app, commands);
  cli::add_convert_command(app, commands);
  cli::add_export_command(app, commands);
  cli::add_data_commands(app, commands);
  std::vector<std::string> help_topics;
  app.add_subcommand("help", "Show a command's help: osprey help train, osprey help bench train")
      ->add_option("command", help_topics, "The command");

  const int parsed =
      tools::parse_command_line(app, std::vector<std::string>(argv + 1, argv + argc));
  if (parsed >= 0) return parsed;
  for (const cli::Command& command : commands)
    if (*command.app) return command.run();
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int rc = 1;
  dist::World world;
  try {
    // Before MPI, OpenMP or the loader start a thread: they all inherit the blocked signals.
    tools::route_stop_signals();
    world = dist::init_world(&argc, &argv);
    set_local_rank_gpu(world.local_rank);
    std::unique_ptr<dist::Communicator> comm = dist::make_communicator(world);
    rc = run(argc, argv, *comm);
  } catch (const std::exception& e) {
    rc = dynamic_cast<const tools::UsageError*>(&e) ? 2 : 1;
    std::fflush(stdout);
    // Messages quote file names and contents: no byte of them may drive the terminal.
    const std::string message = printable(e.what());
    if (world.size > 1)
      std::fprintf(stderr, "osprey: error on rank %d of %d: %s\n", world.rank, world.size,
                   message.c_str());
    else
      std::fprintf(stderr, "osprey: error: %s\n", message.c_str());
    // The other ranks may be waiting in a collective for this one: stop the whole job.
    dist::abort_world(rc);
  }
  dist::finalize_world();
  return rc;
}
