#include "tools/cli/commands.h"
#include "tools/cli_help.h"
#include "tools/run_dir.h"
#include "tools/train.h"

namespace osprey::cli {
namespace {

struct TrainArgs {
  std::string config_path, resume, run_name;
  std::vector<std::string> sets;
  tools::TrainOptions options;
};

int run_train_command(TrainArgs& a, const Context& context) {
  tools::TrainConfig cfg;
  std::string checkpoint;
  if (!a.resume.empty()) {
    checkpoint = tools::resolve_checkpoint(a.resume, cfg.runs_dir);
    cfg = tools::config_from_checkpoint(checkpoint);
  } else if (!a.config_path.empty()) {
    cfg = tools::load_config_file(a.config_path);
  }
  if (!a.run_name.empty()) cfg.name = a.run_name;
  for (const auto& s : a.sets) tools::apply_override(cfg, s);
  a.options.resume_from = checkpoint;
  for (int i = 0; i < context.argc; ++i)
    a.options.command_line += (i ? " " : "") + std::string(context.argv[i]);
  const tools::TrainOutcome outcome = tools::run_train(cfg, a.options, context.comm);
  return outcome.stopped_by_signal ? 128 + outcome.stopped_by_signal : 0;
}

}  // namespace

void add_train_command(CLI::App& app, Commands& commands, const Context& context) {
  auto a = std::make_shared<TrainArgs>();
  auto* train = app.add_subcommand(
      "train",
      "Train a model. With no options: simple_cnn on Fashion-MNIST (Adam 1e-3, batch "
      "128, 10 epochs). Writes runs/<model>_<dataset>_<N>/ (or --name): config.json, "
      "metrics.jsonl, last/best.safetensors, curves.png. Ctrl-C saves a resumable checkpoint "
      "and exits 130.");
  train->add_option("--config", a->config_path, "JSON config file (keys below); defaults otherwise")
      ->check(CLI::ExistingFile);
  train->add_option("--set", a->sets, "Override one key: --set key=value (repeatable)");
  train
      ->add_option("--resume", a->resume,
                   "Continue a run from its checkpoint: a run directory, a checkpoint file, or a "
                   "run name under runs/. Its config is used; --set still overrides (e.g. epochs)")
      ->excludes("--config");
  train->add_option("--name", a->run_name,
                    "The run's folder under runs_dir (default: <model>_<dataset>_<N>, the next "
                    "free N); an existing run is refused unless --overwrite");
  train->add_flag("--overwrite", a->options.overwrite, "Replace an existing run of the same name");
  train->footer(tools::config_reference_text());
  commands.push_back({train, [a, context] { return run_train_command(*a, context); }});
}

}  // namespace osprey::cli
