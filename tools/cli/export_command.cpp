// osprey export --onnx: a trained checkpoint's inference form as an ONNX model (docs/onnx.md),
// optionally with test data in ONNX's layout: test images after the eval pipeline and the
// logits `osprey predict`'s network gives them, to check another runtime against.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>

#include "data/augment.h"
#include "engine/inference_graph.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "interop/onnx_export.h"
#include "interop/onnx_tensor.h"
#include "tools/build_info.h"
#include "tools/cli/commands.h"
#include "tools/datasets.h"
#include "tools/inference.h"

namespace osprey::cli {
namespace {

struct ExportArgs : CheckpointArgs {
  ExportArgs() { device = "cpu"; }
  std::string onnx;
  bool softmax = false;
  int test_data = 0;
};

// Refused before the checkpoint is loaded: a folder that is not there, or OUT a folder.
void check_writable(const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path path(out);
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  OSPREY_CHECK(fs::is_directory(dir, ec), "cannot write '", printable(out), "': folder '",
               printable(dir.string()), "' does not exist");
  OSPREY_CHECK(!fs::is_directory(path, ec), "cannot write '", printable(out), "': it is a folder");
}

// Keys and values of the model's metadata_props (docs/onnx.md).
std::vector<std::pair<std::string, std::string>> metadata(const tools::TrainedModel& tm,
                                                          const interop::OnnxExportOptions& o) {
  const tools::ModelInput& in = tm.input;
  std::vector<std::pair<std::string, std::string>> m = {
      {"model", tm.model->name()},
      {"osprey_version", tools::build_info().version},
      {"class_names", nlohmann::json(in.class_names).dump()},
      {"input_chw", nlohmann::json({in.c, in.h, in.w}).dump()},
      {"source_hwc", nlohmann::json({in.source.h, in.source.w, in.source.c}).dump()},
      {"eval_pipeline", in.eval_pipeline.dump()},
      {"output", interop::onnx_output_name(o)}};
  for (const nlohmann::json& step : in.eval_pipeline)
    if (step.is_object() && step.value("type", "") == "normalize") {
      m.push_back({"mean", step.at("mean").dump()});
      m.push_back({"std", step.at("std").dump()});
    }
  return m;
}

Tensor nhwc_to_nchw(const Tensor& x) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  Tensor y = Tensor::empty({n, c, h, w});
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < c; ++k) dst[(i * c + k) * h * w + p] = src[(i * h * w + p) * c + k];
  return y;
}

// The first `count` images of the run's test set through its eval pipeline (NCHW), and the
// output of the network `osprey predict` runs on them.
struct TestData {
  Tensor input, output;
};

TestData make_test_data(tools::TrainedModel& tm, int count, const interop::OnnxExportOptions& o) {
  tools::TrainConfig cfg = tm.cfg;
  cfg.limit_train = 1;  // only the test split is used
  const tools::DataSplits data = tools::load_data(cfg);
  const data::ImageShape& src = tm.input.source;
  OSPREY_CHECK(data.test.h == src.h && data.test.w == src.w && data.test.c == src.c,
               "--test-data: the test set's images (", data.test.h, "x", data.test.w, "x",
               data.test.c, ") are not the ones the model was trained on");
  OSPREY_CHECK(count <= data.test.n, "--test-data ", count, ": the test set has only ", data.test.n,
               " images");
  std::vector<int64_t> idx(static_cast<size_t>(count));
  std::iota(idx.begin(), idx.end(), 0);
  Tensor x = Tensor::empty({count, tm.input.h, tm.input.w, tm.input.c});
  data::eval_into(data::AugmentPipeline::from_json(tm.input.eval_pipeline), data.test, idx.data(),
                  count, tm.input.c, x.data<float>());
  Tensor y = tm.net->forward(x.to(tm.model->device())).to(Device::cpu);
  return {nhwc_to_nchw(x), o.softmax ? ops::softmax(y) : y};
}

int run_export(const ExportArgs& a) {
  check_writable(a.onnx);
  tools::TrainedModel tm = load_trained_model(a);
  const InferenceGraph graph = tm.model->inference_graph(tm.input.h, tm.input.w);
  OSPREY_CHECK(graph.channels() == tm.input.c, tm.model->name(), ": the graph takes ",
               graph.channels(), " channels, the checkpoint's input has ", tm.input.c);
  interop::OnnxExportOptions o;
  o.softmax = a.softmax;
  o.producer_version = tools::build_info().version;
  o.metadata = metadata(tm, o);
  const onnx::ModelProto model = interop::onnx_model(graph, o);
  // Everything that can fail on the checkpoint or its data comes before the first write.
  const TestData test = a.test_data > 0 ? make_test_data(tm, a.test_data, o) : TestData{};
  interop::write_onnx_model(model, a.onnx);
  std::printf("wrote %s: %s, input [N,%d,%d,%d], %zu nodes, opset %d\n", a.onnx.c_str(),
              tm.model->name().c_str(), tm.input.c, tm.input.h, tm.input.w, graph.nodes().size(),
              interop::kOnnxOpset);
  if (a.test_data > 0) {
    const std::filesystem::path parent = std::filesystem::path(a.onnx).parent_path();
    const std::string dir = parent.empty() ? "." : parent.string();
    interop::write_onnx_test_data(dir, InferenceGraph::input_name(), test.input,
                                  interop::onnx_output_name(o), test.output);
    std::printf("wrote %d test images and %s's outputs to %s/test_data_set_0\n", a.test_data,
                tm.model->name().c_str(), dir.c_str());
  }
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, Commands& commands) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write a checkpoint's inference form as an ONNX model (BatchNorm folded, NCHW input, "
      "dynamic batch; class names and normalisation in its metadata): docs/onnx.md");
  auto a = std::make_shared<ExportArgs>();
  cmd->add_option("--onnx", a->onnx, "Output .onnx file (written atomically)")->required();
  cmd->add_option("checkpoint", a->run, "A run directory, checkpoint file, run name or .pth")
      ->required();
  add_checkpoint_options(cmd, *a, false);
  cmd->add_flag("--softmax", a->softmax, "End with Softmax: output probabilities, not logits");
  cmd->add_option("--test-data", a->test_data,
                  "Also write test_data_set_0/ beside the model: the first N test images after "
                  "the eval pipeline (input_0.pb) and Osprey's outputs for them (output_0.pb)")
      ->check(CLI::Range(0, 10000));
  commands.push_back({cmd, [a] { return run_export(*a); }});
}

}  // namespace osprey::cli
