// osprey config (the key reference, or the config a command line resolves to) and osprey plot.
#include <cstdio>

#include "kernels/error.h"
#include "tools/cli/commands.h"
#include "tools/cli_help.h"
#include "tools/cli_suggest.h"
#include "tools/plot.h"

namespace osprey::cli {

tools::TrainConfig resolve_config(const std::string& config_path,
                                  const std::vector<std::string>& sets) {
  tools::TrainConfig cfg;
  if (!config_path.empty()) cfg = tools::load_config_file(config_path);
  for (const auto& s : sets) tools::apply_override(cfg, s);
  return cfg;
}

namespace {

struct ConfigArgs {
  bool list = false, show = false;
  std::string config;
  std::vector<std::string> sets;
};

int config_command(const ConfigArgs& a) {
  OSPREY_USAGE_CHECK(a.list || a.show,
                     "osprey config: give --list (every key) or --show (the resolved config)");
  if (a.list) {
    std::fputs(tools::config_reference_text().c_str(), stdout);
    return 0;
  }
  tools::TrainConfig cfg = resolve_config(a.config, a.sets);
  tools::validate(cfg);
  std::printf("%s\n", tools::to_json(cfg).dump(2).c_str());
  return 0;
}

void add_plot(CLI::App& app, Commands& commands) {
  auto* plot = app.add_subcommand(
      "plot", "Draw the training curves of runs (loss and accuracy against the epoch) as one PNG");
  struct Args {
    std::vector<std::string> runs;
    std::string output, runs_dir = tools::TrainConfig{}.runs_dir;
  };
  auto a = std::make_shared<Args>();
  plot->add_option("runs", a->runs, "Run directories or run names under --runs-dir")->required();
  plot->add_option("-o,--output", a->output,
                   "The PNG to write (default: RUN/curves.png for one run, ./curves.png for "
                   "several)");
  plot->add_option("--runs-dir", a->runs_dir, "Where run names are looked up")
      ->capture_default_str();
  commands.push_back({plot, [a] {
                        std::printf("%s\n",
                                    tools::plot_runs(a->runs, a->output, a->runs_dir).c_str());
                        return 0;
                      }});
}

}  // namespace

void add_config_commands(CLI::App& app, Commands& commands) {
  auto* config = app.add_subcommand(
      "config",
      "List the config keys (--list) or print the config a command line resolves to "
      "(--show)");
  auto a = std::make_shared<ConfigArgs>();
  auto* list_flag = config->add_flag("--list", a->list,
                                     "Every config key: type, default, allowed values and meaning");
  config->add_flag("--show", a->show, "The resolved config of --config and --set, as JSON")
      ->excludes(list_flag);
  config->add_option("--config", a->config, "JSON config file")->check(CLI::ExistingFile);
  config->add_option("--set", a->sets, "Override one key: --set key=value (repeatable)");
  commands.push_back({config, [a] { return config_command(*a); }});
  add_plot(app, commands);
}

}  // namespace osprey::cli
