// eval, predict and serve (and the checkpoint options export shares): a trained checkpoint applied
// to its test set, to image files, or to uploads over HTTP.
#include <cstdio>

#include "tools/cli/commands.h"
#include "tools/inference.h"
#include "tools/serve.h"

namespace osprey::cli {

void add_checkpoint_options(CLI::App* cmd, CheckpointArgs& a, bool with_device) {
  cmd->add_option("--config", a.config,
                  "For a PyTorch .pth or plain state_dict: the training config it belongs to "
                  "(model, data, input size)");
  cmd->add_option("--set", a.sets, "Override a config key (e.g. data_dir=...)");
  if (with_device)
    cmd->add_option("--device", a.device, "cpu, cuda or auto")->capture_default_str();
}

tools::TrainedModel load_trained_model(const CheckpointArgs& a) {
  std::vector<std::string> sets = a.sets;
  sets.push_back("device=" + a.device);
  return tools::load_trained(a.run, sets, a.config);
}

namespace {

void add_eval(CLI::App& app, Commands& commands) {
  auto* eval = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint on its run's whole test set: accuracy, loss, per-class "
      "accuracy and the confusion matrix");
  auto a = std::make_shared<CheckpointArgs>();
  eval->add_option("checkpoint", a->run, "A run directory, checkpoint file, run name or .pth")
      ->required();
  add_checkpoint_options(eval, *a);
  commands.push_back({eval, [a] {
                        tools::TrainedModel tm = load_trained_model(*a);
                        tools::print_evaluation(tools::run_eval(tm), tm.input);
                        return 0;
                      }});
}

struct PredictArgs : CheckpointArgs {
  std::vector<std::string> images;
  int top_k = 3;
  float threshold = 0.5f;
};

int predict(const PredictArgs& a) {
  tools::TrainedModel tm = load_trained_model(a);
  for (const auto& p : tools::run_predict(tm, a.images, a.top_k, a.threshold)) {
    std::printf("%s:%s\n", p.path.c_str(), p.uncertain ? " uncertain" : "");
    for (const auto& [k, prob] : p.top)
      std::printf("  %-24s %6.2f%%\n", tm.input.class_names[size_t(k)].c_str(), 100.0 * prob);
  }
  return 0;
}

void add_predict(CLI::App& app, Commands& commands) {
  auto* cmd = app.add_subcommand(
      "predict",
      "Classify images (PNG, JPEG, BMP, ...) with a trained checkpoint: top-k classes "
      "with probabilities; answers below --threshold are marked uncertain");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("--checkpoint", a->run, "A run directory, checkpoint file, run name or .pth")
      ->required();
  add_checkpoint_options(cmd, *a);
  cmd->add_option("images", a->images, "Image files")->required();
  cmd->add_option("--top-k", a->top_k, "Classes to show per image")->capture_default_str();
  cmd->add_option("--threshold", a->threshold,
                  "Top-1 probability below which the answer is marked uncertain")
      ->capture_default_str();
  commands.push_back({cmd, [a] { return predict(*a); }});
}

struct ServeArgs : CheckpointArgs {
  tools::ServeOptions options;
};

int serve(ServeArgs& a) {
  tools::TrainedModel tm = load_trained_model(a);
  tools::InferenceServer server(tm, a.options);
  const int port = server.bind();
  std::printf("osprey serve: %s (%s) on http://%s:%d/\n", tm.model->name().c_str(),
              tm.checkpoint.c_str(), a.options.host.c_str(), port);
  std::fflush(stdout);
  server.listen();
  return 0;
}

void add_serve(CLI::App& app, Commands& commands) {
  auto* cmd =
      app.add_subcommand("serve",
                         "Serve a web page (upload an image, see the top-3) and a JSON API: POST "
                         "/api/predict (image body or multipart 'image', ?k=), GET /api/model, GET "
                         "/api/health");
  auto a = std::make_shared<ServeArgs>();
  tools::ServeOptions& so = a->options;
  cmd->add_option("--checkpoint", a->run, "A run directory, checkpoint file, run name or .pth")
      ->required();
  add_checkpoint_options(cmd, *a);
  cmd->add_option("--host", so.host, "Address to bind (default: loopback only)")
      ->capture_default_str();
  cmd->add_option("--port", so.port, "Port (0 = any free port)")->capture_default_str();
  cmd->add_option("--threshold", so.threshold,
                  "Top-1 probability below which an answer is marked uncertain")
      ->capture_default_str();
  cmd->add_option("--max-batch", so.max_batch, "Requests batched into one forward")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", so.max_body_bytes, "Largest accepted upload")
      ->capture_default_str();
  cmd->add_option("--max-image-side", so.max_image_side, "Largest accepted image side")
      ->capture_default_str();
  cmd->add_option("--decode-slots", so.decode_slots, "Images decoded at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-queued", so.max_queued, "Predictions waiting to decode; more get 503")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--max-connections", so.max_connections, "Open connections at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  commands.push_back({cmd, [a] { return serve(*a); }});
}

}  // namespace

void add_inference_commands(CLI::App& app, Commands& commands) {
  add_eval(app, commands);
  add_predict(app, commands);
  add_serve(app, commands);
}

}  // namespace osprey::cli
