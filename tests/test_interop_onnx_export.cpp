// osprey export --onnx's writer: simple_cnn and both MobileNetV2 stems with random weights and
// BatchNorm statistics, written, read back and checked by ONNX's checker; the graph's form
// (Clip for ReLU6, no BatchNormalization, a free batch dimension, metadata) and its values,
// run by a naive interpreter (tests/onnx_reference.h), against the model's InferenceNet.
#include <onnx/checker.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "engine/inference_graph.h"
#include "engine/init.h"
#include "interop/onnx_export.h"
#include "interop/onnx_tensor.h"
#include "models/mobilenet_v2.h"
#include "models/simple_cnn.h"
#include "tests/onnx_reference.h"

using namespace osprey;

namespace {

// Statistics and affine parameters far from their initial 0/1, so that a fold that forgot one
// of them shows.
void randomize_batchnorm(Model& model, uint64_t seed) {
  Rng rng(seed);
  for (const Buffer& b : model.params().buffers()) {
    if (b.name.find("running_mean") != std::string::npos) init::normal(b.value, 0.0, 0.3, rng);
    if (b.name.find("running_var") != std::string::npos) init::uniform(b.value, 0.3, 2.0, rng);
  }
  for (const Parameter& p : model.params().params()) {
    const std::string prefix = p.name.substr(0, p.name.rfind('.'));
    if (!model.params().find_buffer(prefix + ".running_mean")) continue;
    if (p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0)
      init::uniform(p.value, 0.5, 1.5, rng);
    else
      init::normal(p.value, 0.0, 0.2, rng);
  }
}

int count_ops(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const onnx::NodeProto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props())
    if (p.key() == key) return p.value();
  return "";
}

tests::RefTensor nchw(const Tensor& x) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  tests::RefTensor r{{n, c, h, w}, std::vector<double>(size_t(x.numel()))};
  const std::vector<float> v = x.to_vector();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < c; ++k)
        r.v[size_t((i * c + k) * h * w + p)] = v[size_t((i * h * w + p) * c + k)];
  return r;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

struct ExportCase {
  std::string name;
  std::function<std::unique_ptr<Model>()> make;
  int c, h, w, relu6;  // relu6: how many Clip nodes the graph must have
};

// Written to a file and read back, as osprey export does.
onnx::ModelProto export_and_read(const Model& model, int h, int w,
                                 const interop::OnnxExportOptions& o) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("osprey_onnx_export_" + std::to_string(::getpid()) + ".onnx"))
                               .string();
  interop::write_onnx_model(interop::onnx_model(model.inference_graph(h, w), o), path);
  onnx::ModelProto back = interop::read_onnx_model(path);
  std::filesystem::remove(path);
  return back;
}

}  // namespace

TEST_CASE("onnx export: three models pass ONNX's checker and compute their InferenceNet's logits",
          "[interop][onnx]") {
  // MobileNetV2 at width 0.25: 17 blocks, 35 ReLU6 (stem, head, and each block's expand and
  // depthwise layers, block 1 having no expand).
  const std::vector<ExportCase> cases = {
      {"simple_cnn", [] { return std::make_unique<models::SimpleCnn>(1, 28, 28, 10, 3); }, 1, 28,
       28, 0},
      {"mobilenet_v2",
       [] { return std::make_unique<models::MobileNetV2>(10, 0.25f, false, 3, 0.2f, 4); }, 3, 28,
       28, 35},
      {"mobilenet_v2_cifar",
       [] { return std::make_unique<models::MobileNetV2>(10, 0.25f, true, 1, 0.2f, 5); }, 1, 20, 20,
       35},
  };
  for (const ExportCase& ec : cases) {
    SECTION(ec.name) {
      std::unique_ptr<Model> model = ec.make();
      randomize_batchnorm(*model, 11);
      model->eval();
      interop::OnnxExportOptions o;
      o.producer_version = "test";
      o.metadata = {{"class_names", "[\"a\",\"b\"]"}, {"model", model->name()}};
      const onnx::ModelProto m = export_and_read(*model, ec.h, ec.w, o);
      REQUIRE_NOTHROW(onnx::checker::check_model(m));

      REQUIRE(m.opset_import(0).version() == interop::kOnnxOpset);
      REQUIRE(count_ops(m, "BatchNormalization") == 0);
      REQUIRE(count_ops(m, "Clip") == ec.relu6);
      REQUIRE(count_ops(m, "Softmax") == 0);
      const auto& in = m.graph().input(0).type().tensor_type().shape();
      REQUIRE(in.dim_size() == 4);
      REQUIRE(in.dim(0).dim_param() == "N");
      REQUIRE(in.dim(1).dim_value() == ec.c);
      REQUIRE(in.dim(2).dim_value() == ec.h);
      REQUIRE(in.dim(3).dim_value() == ec.w);
      const auto& out = m.graph().output(0).type().tensor_type().shape();
      REQUIRE(m.graph().output(0).name() == "logits");
      REQUIRE(out.dim(0).dim_param() == "N");
      REQUIRE(out.dim(1).dim_value() == 10);
      REQUIRE(metadata(m, "class_names") == "[\"a\",\"b\"]");
      REQUIRE(metadata(m, "model") == ec.name);

      Rng rng(7);
      Tensor x = Tensor::empty({2, ec.h, ec.w, ec.c});
      init::normal(x, 0.0, 1.0, rng);
      const std::vector<float> osprey = model->inference_net()->forward(x).to_vector();
      const tests::RefTensor ref = tests::run_onnx_reference(m, nchw(x));
      REQUIRE(ref.shape == std::vector<int64_t>{2, 10});
      const double err = rel_l2(osprey, ref.v);
      INFO(ec.name << ": relative L2 " << err);
      REQUIRE(err < 1e-4);
    }
  }
}

TEST_CASE("onnx export: --softmax ends with Softmax over the classes", "[interop][onnx]") {
  models::SimpleCnn model(1, 8, 8, 4, 1);
  interop::OnnxExportOptions o;
  o.softmax = true;
  const onnx::ModelProto m = export_and_read(model, 8, 8, o);
  REQUIRE_NOTHROW(onnx::checker::check_model(m));
  REQUIRE(m.graph().node(m.graph().node_size() - 1).op_type() == "Softmax");
  REQUIRE(m.graph().output(0).name() == "probabilities");
  Rng rng(2);
  Tensor x = Tensor::empty({3, 8, 8, 1});
  init::normal(x, 0.0, 1.0, rng);
  const tests::RefTensor p = tests::run_onnx_reference(m, nchw(x));
  for (int i = 0; i < 3; ++i) {
    double sum = 0;
    for (int k = 0; k < 4; ++k) sum += p.v[size_t(i * 4 + k)];
    REQUIRE(sum == Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("onnx export: refusals name what is wrong", "[interop][onnx]") {
  struct NoGraph : Model {
    Tensor forward(const Tensor& x) override { return x; }
    std::string name() const override { return "nograph"; }
    std::vector<std::string> classifier_prefixes() const override { return {}; }
  } no_graph;
  REQUIRE_THROWS_WITH(no_graph.inference_graph(8, 8),
                      Catch::Contains("nograph has no export form"));
  models::SimpleCnn cnn(1, 28, 28, 10);
  REQUIRE_THROWS_WITH(cnn.inference_graph(32, 32),
                      Catch::Contains("simple_cnn built for 28x28 inputs has no graph for 32x32"));

  InferenceGraph g("g", 1, 4, 4, 2);
  const std::string r = g.relu("r", g.input_name());
  REQUIRE_THROWS_WITH(g.relu("r", r), Catch::Contains("two tensors named 'r'"));
  REQUIRE_THROWS_WITH(g.relu("s", "nowhere"), Catch::Contains("reads 'nowhere'"));
  REQUIRE_THROWS_WITH(interop::onnx_model(g, {}), Catch::Contains("has no output"));
  // A graph whose output is not [N, classes] is caught by the checker's shape inference.
  g.set_output(r);
  REQUIRE_THROWS_WITH(interop::onnx_model(g, {}), Catch::Contains("does not pass ONNX's checker"));
}

TEST_CASE("onnx export: test data in ONNX's layout reads back", "[interop][onnx]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("osprey_onnx_testdata_" + std::to_string(::getpid()));
  const Tensor in = Tensor::from_data({1, 2, 2, 1}, {1, 2, 3, 4});
  const Tensor out = Tensor::from_data({1, 3}, {0.5f, -1, 2});
  interop::write_onnx_test_data(dir.string(), "input", in, "logits", out);
  const onnx::TensorProto i =
      interop::read_onnx_tensor((dir / "test_data_set_0/input_0.pb").string());
  const onnx::TensorProto o =
      interop::read_onnx_tensor((dir / "test_data_set_0/output_0.pb").string());
  REQUIRE(i.name() == "input");
  REQUIRE(o.name() == "logits");
  REQUIRE(interop::tensor_from_proto(i, "input").to_vector() == in.to_vector());
  REQUIRE(interop::tensor_from_proto(o, "logits").shape() == Shape{1, 3});
  std::filesystem::remove_all(dir);
}
