// osprey bench train | inference | gemm | conv | loader: one JSON line per measurement.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tools/bench.h"
#include "tools/cli/commands.h"

namespace osprey::cli {
namespace {

// The model and run-length options every model benchmark takes.
void add_model_options(CLI::App* cmd, tools::BenchTrainOptions& o, const char* steps_meaning) {
  cmd->add_option("--model", o.model, "Model name")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Batch size")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all cores)");
  cmd->add_option("--steps", o.steps, steps_meaning)->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Untimed warm-up steps")->capture_default_str();
  cmd->add_option("--channels", o.in_channels, "Input channels")->capture_default_str();
  cmd->add_option("--size", o.size, "Input height and width")->capture_default_str();
  cmd->add_option("--classes", o.classes, "Classes")->capture_default_str();
  cmd->add_option("--width", o.width_mult, "Width multiplier")->capture_default_str();
}

int print_lines(const std::vector<nlohmann::json>& lines) {
  for (const auto& line : lines) std::printf("%s\n", line.dump().c_str());
  return 0;
}

void add_bench_train(CLI::App* bench, Commands& commands, const Context& context) {
  auto* cmd = bench->add_subcommand(
      "train", "Time training steps (forward, backward, optimizer) on synthetic data");
  auto o = std::make_shared<tools::BenchTrainOptions>();
  add_model_options(cmd, *o, "Timed steps");
  cmd->add_option("--optimizer", o->optimizer, "adam | adamw | sgd")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "Activations: f32, or bf16 (mixed precision; mobilenet_v2 models)")
      ->capture_default_str();
  cmd->add_flag("--tf32", o->tf32, "cuda: GEMMs on TF32 tensor cores");
  cmd->add_flag("--recompute", o->recompute,
                "Recompute activations in backward instead of keeping them");
  cmd->add_flag("--profile", o->profile,
                "Then time every op (forward, backward, optimizer) over as many steps");
  cmd->add_option("--pipeline-stages", o->pipeline_stages,
                  "Split the model into this many GPipe stages over consecutive ranks "
                  "(ranks = stages x data-parallel replicas)")
      ->capture_default_str();
  cmd->add_option("--micro-batches", o->micro_batches, "Micro-batches per step in a pipeline")
      ->capture_default_str();
  commands.push_back({cmd, [o, context] {
                        nlohmann::json result = tools::bench_train(*o, *context.comm);
                        if (context.comm->rank() == 0) std::printf("%s\n", result.dump().c_str());
                        return 0;
                      }});
}

void add_bench_inference_and_gemm(CLI::App* bench, Commands& commands) {
  auto* inference = bench->add_subcommand(
      "inference",
      "Time eval-mode forwards: the training graph vs folded BatchNorm + fused blocks");
  auto io = std::make_shared<tools::BenchTrainOptions>();
  io->model = "mobilenet_v2_cifar", io->in_channels = 3, io->size = 32;
  add_model_options(inference, *io, "Timed forwards of each form");
  inference->add_option("--device", io->device, "cpu, cuda or auto")->capture_default_str();
  inference->add_flag("--tf32", io->tf32, "cuda: GEMMs on TF32 tensor cores");
  commands.push_back({inference, [io] { return print_lines({tools::bench_inference(*io)}); }});

  auto* gemm = bench->add_subcommand(
      "gemm",
      "CPU roofline: the measured fp32 GEMM peak, then every GEMM of a training step with its "
      "GFLOP/s and fraction of that peak (one JSON line each)");
  auto go = std::make_shared<tools::BenchTrainOptions>();
  go->steps = 5;
  add_model_options(gemm, *go, "Recorded steps");
  gemm->add_option("--optimizer", go->optimizer, "adam | adamw | sgd")->capture_default_str();
  commands.push_back({gemm, [go] { return print_lines(tools::bench_gemm(*go)); }});
}

void add_bench_conv_and_loader(CLI::App* bench, Commands& commands) {
  auto* conv = bench->add_subcommand(
      "conv", "Our dense convolutions against oneDNN's convolution primitives, per model shape");
  auto co = std::make_shared<tools::BenchTrainOptions>();
  co->model = "all", co->steps = 20;
  conv->add_option("--model", co->model, "all, simple_cnn, mobilenet_v2_cifar or mobilenet_v2")
      ->capture_default_str();
  conv->add_option("--threads", co->threads, "CPU threads (0 = all cores)");
  conv->add_option("--steps", co->steps, "Timed runs of each side")->capture_default_str();
  conv->add_option("--warmup", co->warmup, "Untimed runs of each side")->capture_default_str();
  commands.push_back({conv, [co] { return print_lines(tools::bench_conv(*co)); }});

  auto* loader = bench->add_subcommand(
      "loader", "Time the input pipeline of a training config (reading, augmentation) alone");
  struct Args {
    std::string config;
    std::vector<std::string> sets;
    int batches = 50;
  };
  auto a = std::make_shared<Args>();
  loader->add_option("--config", a->config, "JSON config file")->check(CLI::ExistingFile);
  loader->add_option("--set", a->sets, "Override one key: --set key=value");
  loader->add_option("--batches", a->batches, "Timed batches")->capture_default_str();
  commands.push_back({loader, [a] {
                        tools::TrainConfig cfg = resolve_config(a->config, a->sets);
                        tools::validate(cfg);
                        return print_lines({tools::bench_loader(cfg, a->batches)});
                      }});
}

}  // namespace

void add_bench_commands(CLI::App& app, Commands& commands, const Context& context) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that print one JSON line each");
  add_bench_train(bench, commands, context);
  add_bench_inference_and_gemm(bench, commands);
  add_bench_conv_and_loader(bench, commands);
}

}  // namespace osprey::cli
