// The `osprey` subcommands, one file each (or one per family): each registers its options on
// the app and says what to run when the command line chose it. main.cpp parses and dispatches.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "tools/config.h"

namespace osprey::tools {
struct TrainedModel;  // tools/inference.h
}

namespace osprey::cli {

struct Command {
  CLI::App* app;             // the subcommand; true after parsing when it was chosen
  std::function<int()> run;  // its exit code
};
using Commands = std::vector<Command>;

// The process's command line and communicator, which some commands record or use.
struct Context {
  int argc = 0;
  char** argv = nullptr;
  dist::Communicator* comm = nullptr;
};

void add_train_command(CLI::App& app, Commands& commands, const Context& context);
void add_verify_command(CLI::App& app, Commands& commands);
void add_inference_commands(CLI::App& app, Commands& commands);  // eval, predict, serve
void add_bench_commands(CLI::App& app, Commands& commands, const Context& context);
void add_config_commands(CLI::App& app, Commands& commands);  // config, plot
void add_convert_command(CLI::App& app, Commands& commands);  // .pth to safetensors
void add_export_command(CLI::App& app, Commands& commands);   // ONNX
void add_data_commands(CLI::App& app, Commands& commands);    // data get, data typefaces
// The two `osprey data` subcommands (tools/cli/data_*_command.cpp), under `data`.
void add_data_get_command(CLI::App* data, Commands& commands);
void add_data_typefaces_command(CLI::App* data, Commands& commands);

// Where eval, predict, serve and export get their model: a run or checkpoint, or a bare
// state_dict (a PyTorch .pth) with the training config it belongs to.
struct CheckpointArgs {
  std::string run, config, device = "auto";
  std::vector<std::string> sets;
};
// --config and --set on cmd, and --device when with_device (export always loads on the cpu).
void add_checkpoint_options(CLI::App* cmd, CheckpointArgs& a, bool with_device = true);
// tools::load_trained with a's config, overrides and device.
tools::TrainedModel load_trained_model(const CheckpointArgs& a);

// The training config of --config FILE (or the defaults) and the --set overrides, in order.
tools::TrainConfig resolve_config(const std::string& config_path,
                                  const std::vector<std::string>& sets);

}  // namespace osprey::cli
