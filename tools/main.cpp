// The osprey command line: train, verify, eval, predict, serve, bench, config, help.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "dist/communicator.h"
#include "dist/world.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/parse.h"
#include "tools/bench.h"
#include "tools/build_info.h"
#include "tools/cli_app.h"
#include "tools/cli_help.h"
#include "tools/cli_suggest.h"
#include "tools/config.h"
#include "tools/inference.h"
#include "tools/plot.h"
#include "tools/serve.h"
#include "tools/stop_signal.h"
#include "tools/train.h"
#include "tools/verify.h"

namespace {

using namespace osprey;

constexpr const char* kExitCodes =
    "Exit codes: 0 success; 1 error (a run, file or data problem); 2 usage error (an unknown "
    "command, option or config key, a value of the wrong type or not allowed); 128+N train "
    "stopped by signal N (130: Ctrl-C). 'osprey help COMMAND' shows a command's options.";

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

// The training config of --config FILE (or the defaults) and the --set overrides, in that order.
tools::TrainConfig resolve_config(const std::string& config_path,
                                  const std::vector<std::string>& sets) {
  tools::TrainConfig cfg;
  if (!config_path.empty()) cfg = tools::load_config_file(config_path);
  for (const auto& s : sets) tools::apply_override(cfg, s);
  return cfg;
}

int run(int argc, char** argv, dist::Communicator& comm) {
  CLI::App app{"Osprey: a C++/CUDA training engine for image classifiers (MobileNetV2, small CNN)"};
  app.name("osprey");
  const tools::BuildInfo& build = tools::build_info();
  app.set_version_flag("--version", "osprey " + build.version + " (commit " + build.commit + "; " +
                                        build.options + ")");
  app.footer(tools::wrap_words(kExitCodes, 100, 0));

  auto* train = app.add_subcommand(
      "train",
      "Train a model. With no options: simple_cnn on Fashion-MNIST (Adam 1e-3, batch "
      "128, 10 epochs). Writes runs/<model>_<dataset>_<N>/ (or --name): config.json, "
      "metrics.jsonl, last/best.safetensors, curves.png. Ctrl-C saves a resumable checkpoint "
      "and exits 130.");
  std::string config_path;
  std::vector<std::string> sets;
  train->add_option("--config", config_path, "JSON config file (keys below); defaults otherwise")
      ->check(CLI::ExistingFile);
  train->add_option("--set", sets, "Override one key: --set key=value (repeatable)");
  std::string resume;
  train
      ->add_option("--resume", resume,
                   "Continue a run from its checkpoint: a run directory, a checkpoint file, or a "
                   "run name under runs/. Its config is used; --set still overrides (e.g. epochs)")
      ->excludes("--config");
  tools::TrainOptions train_options;
  std::string run_name;
  train->add_option("--name", run_name,
                    "The run's folder under runs_dir (default: <model>_<dataset>_<N>, the next "
                    "free N); an existing run is refused unless --overwrite");
  train->add_flag("--overwrite", train_options.overwrite,
                  "Replace an existing run of the same name");
  train->footer(tools::config_reference_text());

  auto* verify = app.add_subcommand(
      "verify",
      "Compare the engine against a PyTorch reference: PREFIX.params.safetensors (a "
      "state_dict) and PREFIX.ref.safetensors. Verdict PASS, PASS (gradients within fp32 "
      "chance) or FAIL; exit 0 for both PASS forms.");
  std::string prefix;
  tools::VerifyOptions vo;
  verify
      ->add_option("prefix", prefix, "Reference prefix, e.g. tests/golden/simple_cnn_c1_k10_b4_28")
      ->required();
  verify->add_option("--model", vo.model, "Model name (default: the reference's metadata)");
  verify->add_option("--classes", vo.classes, "Class count (default: metadata)");
  verify->add_option("--width", vo.width, "Width multiplier (default: metadata)");
  verify->add_option("--threads", vo.threads, "CPU threads (0 = all cores)");
  verify->add_option("--device", vo.device, "cpu, cuda or auto")->capture_default_str();
  verify
      ->add_option("--dtype", vo.dtype,
                   "Activations: f32, or bf16 (mixed precision, bf16 tolerances)")
      ->capture_default_str();

  auto* eval = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint on its run's whole test set: accuracy, loss, per-class "
      "accuracy and the confusion matrix");
  std::string eval_run;
  std::vector<std::string> eval_sets;
  eval->add_option("checkpoint", eval_run, "A run directory, checkpoint file or run name")
      ->required();
  eval->add_option("--set", eval_sets, "Override a key of the stored config (e.g. data_dir=...)");
  std::string infer_device = "auto";
  eval->add_option("--device", infer_device, "cpu, cuda or auto")->capture_default_str();

  auto* predict = app.add_subcommand(
      "predict",
      "Classify images (PNG, JPEG, BMP, ...) with a trained checkpoint: top-k classes "
      "with probabilities; answers below --threshold are marked uncertain");
  std::string predict_run;
  std::vector<std::string> predict_images;
  int top_k = 3;
  float threshold = 0.5f;
  predict->add_option("--device", infer_device, "cpu, cuda or auto")->capture_default_str();
  predict->add_option("--checkpoint", predict_run, "A run directory, checkpoint file or run name")
      ->required();
  predict->add_option("images", predict_images, "Image files")->required();
  predict->add_option("--top-k", top_k, "Classes to show per image")->capture_default_str();
  predict
      ->add_option("--threshold", threshold,
                   "Top-1 probability below which the answer is marked uncertain")
      ->capture_default_str();

  auto* serve =
      app.add_subcommand("serve",
                         "Serve a web page (upload an image, see the top-3) and a JSON API: POST "
                         "/api/predict (image body or multipart 'image', ?k=), GET /api/model, GET "
                         "/api/health");
  std::string serve_run;
  tools::ServeOptions so;
  serve->add_option("--device", infer_device, "cpu, cuda or auto")->capture_default_str();
  serve->add_option("--checkpoint", serve_run, "A run directory, checkpoint file or run name")
      ->required();
  serve->add_option("--host", so.host, "Address to bind (default: loopback only)")
      ->capture_default_str();
  serve->add_option("--port", so.port, "Port (0 = any free port)")->capture_default_str();
  serve
      ->add_option("--threshold", so.threshold,
                   "Top-1 probability below which an answer is "
                   "marked uncertain")
      ->capture_default_str();
  serve->add_option("--max-batch", so.max_batch, "Requests batched into one forward")
      ->capture_default_str();
  serve->add_option("--max-body-bytes", so.max_body_bytes, "Largest accepted upload")
      ->capture_default_str();
  serve->add_option("--max-image-side", so.max_image_side, "Largest accepted image side")
      ->capture_default_str();
  serve->add_option("--decode-slots", so.decode_slots, "Images decoded at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--max-queued", so.max_queued, "Predictions waiting to decode; more get 503")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve->add_option("--max-connections", so.max_connections, "Open connections at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();

  auto* bench = app.add_subcommand("bench", "Benchmarks that print one JSON line each");
  auto* bench_train = bench->add_subcommand(
      "train", "Time training steps (forward, backward, optimizer) on synthetic data");
  tools::BenchTrainOptions bo;
  add_model_options(bench_train, bo, "Timed steps");
  bench_train->add_option("--optimizer", bo.optimizer, "adam | adamw | sgd")->capture_default_str();
  bench_train->add_option("--device", bo.device, "cpu, cuda or auto")->capture_default_str();
  bench_train
      ->add_option("--dtype", bo.dtype,
                   "Activations: f32, or bf16 (mixed precision; mobilenet_v2 models)")
      ->capture_default_str();
  bench_train->add_flag("--tf32", bo.tf32, "cuda: GEMMs on TF32 tensor cores");
  bench_train->add_flag("--recompute", bo.recompute,
                        "Recompute activations in backward instead of keeping them");
  bench_train->add_flag("--profile", bo.profile,
                        "Then time every op (forward, backward, optimizer) over as many steps");
  bench_train
      ->add_option("--pipeline-stages", bo.pipeline_stages,
                   "Split the model into this many GPipe stages over consecutive ranks "
                   "(ranks = stages x data-parallel replicas)")
      ->capture_default_str();
  bench_train
      ->add_option("--micro-batches", bo.micro_batches, "Micro-batches per step in a pipeline")
      ->capture_default_str();

  auto* bench_inference = bench->add_subcommand(
      "inference",
      "Time eval-mode forwards: the training graph vs folded BatchNorm + fused blocks");
  tools::BenchTrainOptions io;
  io.model = "mobilenet_v2_cifar", io.in_channels = 3, io.size = 32;
  add_model_options(bench_inference, io, "Timed forwards of each form");
  bench_inference->add_option("--device", io.device, "cpu, cuda or auto")->capture_default_str();
  bench_inference->add_flag("--tf32", io.tf32, "cuda: GEMMs on TF32 tensor cores");

  auto* bench_gemm = bench->add_subcommand(
      "gemm",
      "CPU roofline: the measured fp32 GEMM peak, then every GEMM of a training step with its "
      "GFLOP/s and fraction of that peak (one JSON line each)");
  tools::BenchTrainOptions go;
  go.steps = 5;
  add_model_options(bench_gemm, go, "Recorded steps");
  bench_gemm->add_option("--optimizer", go.optimizer, "adam | adamw | sgd")->capture_default_str();

  auto* bench_conv = bench->add_subcommand(
      "conv", "Our dense convolutions against oneDNN's convolution primitives, per model shape");
  tools::BenchTrainOptions co;
  co.model = "all", co.steps = 20;
  bench_conv->add_option("--model", co.model, "all, simple_cnn, mobilenet_v2_cifar or mobilenet_v2")
      ->capture_default_str();
  bench_conv->add_option("--threads", co.threads, "CPU threads (0 = all cores)");
  bench_conv->add_option("--steps", co.steps, "Timed runs of each side")->capture_default_str();
  bench_conv->add_option("--warmup", co.warmup, "Untimed runs of each side")->capture_default_str();

  auto* bench_loader = bench->add_subcommand(
      "loader", "Time the input pipeline of a training config (reading, augmentation) alone");
  std::string loader_config;
  std::vector<std::string> loader_sets;
  int loader_batches = 50;
  bench_loader->add_option("--config", loader_config, "JSON config file")->check(CLI::ExistingFile);
  bench_loader->add_option("--set", loader_sets, "Override one key: --set key=value");
  bench_loader->add_option("--batches", loader_batches, "Timed batches")->capture_default_str();

  auto* config = app.add_subcommand(
      "config",
      "List the config keys (--list) or print the config a command line resolves to "
      "(--show)");
  bool list_keys = false, show_config = false;
  std::string shown_config_path;
  std::vector<std::string> shown_sets;
  auto* list_flag = config->add_flag("--list", list_keys,
                                     "Every config key: type, default, allowed values and meaning");
  config->add_flag("--show", show_config, "The resolved config of --config and --set, as JSON")
      ->excludes(list_flag);
  config->add_option("--config", shown_config_path, "JSON config file")->check(CLI::ExistingFile);
  config->add_option("--set", shown_sets, "Override one key: --set key=value (repeatable)");

  auto* plot = app.add_subcommand(
      "plot", "Draw the training curves of runs (loss and accuracy against the epoch) as one PNG");
  std::vector<std::string> plot_runs;
  std::string plot_output, plot_runs_dir = tools::TrainConfig{}.runs_dir;
  plot->add_option("runs", plot_runs, "Run directories or run names under --runs-dir")->required();
  plot->add_option("-o,--output", plot_output,
                   "The PNG to write (default: RUN/curves.png for one run, ./curves.png for "
                   "several)");
  plot->add_option("--runs-dir", plot_runs_dir, "Where run names are looked up")
      ->capture_default_str();

  std::vector<std::string> help_topics;
  app.add_subcommand("help", "Show a command's help: osprey help train, osprey help bench train")
      ->add_option("command", help_topics, "The command");

  const int parsed =
      tools::parse_command_line(app, std::vector<std::string>(argv + 1, argv + argc));
  if (parsed >= 0) return parsed;

  if (*train) {
    tools::TrainConfig cfg;
    std::string checkpoint;
    if (!resume.empty()) {
      checkpoint = tools::resolve_checkpoint(resume, cfg.runs_dir);
      cfg = tools::config_from_checkpoint(checkpoint);
    } else if (!config_path.empty()) {
      cfg = tools::load_config_file(config_path);
    }
    if (!run_name.empty()) cfg.name = run_name;
    for (const auto& s : sets) tools::apply_override(cfg, s);
    train_options.resume_from = checkpoint;
    for (int i = 0; i < argc; ++i)
      train_options.command_line += (i ? " " : "") + std::string(argv[i]);
    const tools::TrainOutcome outcome = tools::run_train(cfg, train_options, &comm);
    return outcome.stopped_by_signal ? 128 + outcome.stopped_by_signal : 0;
  }
  if (*verify) {
    tools::VerifyOptions o = tools::verify_options_from_prefix(prefix);
    o.model = vo.model, o.classes = vo.classes, o.width = vo.width, o.threads = vo.threads;
    o.device = vo.device, o.dtype = vo.dtype;
    return tools::print_verify_report(tools::run_verify(o));
  }
  if (*eval) {
    eval_sets.push_back("device=" + infer_device);
    tools::TrainedModel tm = tools::load_trained(eval_run, eval_sets);
    tools::print_evaluation(tools::run_eval(tm), tm.input);
    return 0;
  }
  if (*predict) {
    tools::TrainedModel tm = tools::load_trained(predict_run, {"device=" + infer_device});
    for (const auto& p : tools::run_predict(tm, predict_images, top_k, threshold)) {
      std::printf("%s:%s\n", p.path.c_str(), p.uncertain ? " uncertain" : "");
      for (const auto& [k, prob] : p.top)
        std::printf("  %-24s %6.2f%%\n", tm.input.class_names[size_t(k)].c_str(), 100.0 * prob);
    }
    return 0;
  }
  if (*serve) {
    tools::TrainedModel tm = tools::load_trained(serve_run, {"device=" + infer_device});
    tools::InferenceServer server(tm, so);
    int port = server.bind();
    std::printf("osprey serve: %s (%s) on http://%s:%d/\n", tm.model->name().c_str(),
                tm.checkpoint.c_str(), so.host.c_str(), port);
    std::fflush(stdout);
    server.listen();
    return 0;
  }
  if (*plot) {
    std::printf("%s\n", tools::plot_runs(plot_runs, plot_output, plot_runs_dir).c_str());
    return 0;
  }
  if (*config) {
    OSPREY_USAGE_CHECK(list_keys || show_config,
                       "osprey config: give --list (every key) or --show (the resolved config)");
    if (list_keys) {
      std::fputs(tools::config_reference_text().c_str(), stdout);
      return 0;
    }
    tools::TrainConfig cfg = resolve_config(shown_config_path, shown_sets);
    tools::validate(cfg);
    std::printf("%s\n", tools::to_json(cfg).dump(2).c_str());
    return 0;
  }
  if (*bench_loader) {
    tools::TrainConfig cfg = resolve_config(loader_config, loader_sets);
    tools::validate(cfg);
    std::printf("%s\n", tools::bench_loader(cfg, loader_batches).dump().c_str());
    return 0;
  }
  if (*bench_gemm) {
    for (const auto& line : tools::bench_gemm(go)) std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  if (*bench_conv) {
    for (const auto& line : tools::bench_conv(co)) std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  if (*bench_inference) {
    std::printf("%s\n", tools::bench_inference(io).dump().c_str());
    return 0;
  }
  if (*bench_train) {
    nlohmann::json result = tools::bench_train(bo, comm);
    if (comm.rank() == 0) std::printf("%s\n", result.dump().c_str());
    return 0;
  }
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
