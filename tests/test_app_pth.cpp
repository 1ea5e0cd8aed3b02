// PyTorch .pth files in eval, predict, serve (tools::load_trained) and verify, written by
// python3-torch 1.13 (tests/golden/make_pth.py): the same logits, accuracy and verify rows as
// their safetensors conversion, the model named by --config; and the refusals around them.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "engine/pth.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/test_support.h"
#include "tests/tiny_run.h"
#include "tools/inference.h"
#include "tools/train.h"
#include "tools/verify.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

const std::string kPth = std::string(OSPREY_GOLDEN_DIR) + "/pth/";

// What `osprey convert IN OUT` writes.
std::string convert(const std::string& pth, const tests::TempDir& dir) {
  const SafeTensorsFile f = read_tensor_file(pth);
  SafeTensorsWriter w;
  for (const std::string& name : f.names()) w.add(name, f.entry(name));
  const std::string out = (dir.path / (fs::path(pth).stem().string() + ".safetensors")).string();
  w.write(out);
  return out;
}

std::string write_config(const tools::TrainConfig& cfg, const tests::TempDir& dir) {
  const std::string path = (dir.path / "config.json").string();
  std::ofstream(path) << tools::to_json(cfg).dump();
  return path;
}

std::vector<float> logits_of(tools::TrainedModel& tm) {
  Tensor x = Tensor::empty({5, tm.input.h, tm.input.w, tm.input.c});
  Rng rng(7);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = rng.normal();
  return tm.net->forward(x).to_vector();
}

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

// The .pth and its conversion, with one of the repository's Fashion-MNIST configs, give bitwise
// the same logits and evaluation: the same weights reached the model through either reader.
void check_same_as_conversion(const std::string& pth, const std::string& config,
                              std::vector<std::string> sets) {
  tests::TempDir dir("osprey_pth_app");
  sets.insert(sets.end(), {"limit_test=100", "threads=2", "data_dir=" + kFashion});
  tools::TrainedModel from_pth = tools::load_trained(pth, sets, config);
  tools::TrainedModel from_st = tools::load_trained(convert(pth, dir), sets, config);
  REQUIRE(from_pth.input.class_names[9] == "Ankle boot");
  const std::vector<float> a = logits_of(from_pth), b = logits_of(from_st);
  REQUIRE(a.size() == 50);
  REQUIRE(a == b);
  const tools::Evaluation ea = tools::run_eval(from_pth), eb = tools::run_eval(from_st);
  REQUIRE(ea.samples == 100);
  REQUIRE(ea.loss == eb.loss);
  REQUIRE(ea.confusion == eb.confusion);
}

const std::string kConfigs = std::string(OSPREY_SOURCE_DIR) + "/configs/";

}  // namespace

TEST_CASE("a simple_cnn training checkpoint .pth evaluates like its safetensors conversion") {
  if (!fs::exists(kFashion)) {
    WARN("dataset-fashion-mnist is not installed: skipping");
    return;
  }
  check_same_as_conversion(kPth + "simple_cnn.pth", kConfigs + "fashion_simple_cnn.json", {});
}

TEST_CASE("a DDP-prefixed MobileNetV2 .pth evaluates like its safetensors conversion") {
  if (!fs::exists(kFashion)) {
    WARN("dataset-fashion-mnist is not installed: skipping");
    return;
  }
  check_same_as_conversion(kPth + "mnv2_cifar_ddp.pth", kConfigs + "fmnist_mobilenet_v2_cifar.json",
                           {"width_mult=0.25"});
}

TEST_CASE("verify takes a .pth state_dict and matches PyTorch as the safetensors one does") {
  const std::string prefix = std::string(OSPREY_GOLDEN_DIR) + "/mnv2_cifar_w0.35_c3_b2_40";
  tools::VerifyOptions st = tools::verify_options_from_prefix(prefix);
  tools::VerifyOptions pth = st;
  pth.params_path = kPth + "mnv2_cifar_w0.35_c3_b2_40.params.pth";
  st.threads = pth.threads = 2;
  const tools::VerifyReport a = tools::run_verify(pth), b = tools::run_verify(st);
  REQUIRE(a.passed());
  REQUIRE(a.rows.size() == b.rows.size());
  REQUIRE(a.rows.size() > 100);
  for (size_t i = 0; i < a.rows.size(); ++i) {
    REQUIRE(a.rows[i].quantity == b.rows[i].quantity);
    REQUIRE(a.rows[i].rel_err == b.rows[i].rel_err);
  }
}

TEST_CASE("a bare state_dict needs --config, an Osprey checkpoint refuses one") {
  tests::TinyRun tiny("pth_refuse");
  tests::TempDir dir("osprey_pth_refuse");
  const std::string config = write_config(tiny.config("x"), dir);
  REQUIRE_THROWS_WITH(tools::load_trained(kPth + "simple_cnn.pth", {}),
                      Catch::Contains("simple_cnn.pth") && Catch::Contains("--config"));
  REQUIRE_THROWS_WITH(tools::load_trained(convert(kPth + "simple_cnn.pth", dir), {}),
                      Catch::Contains("bare state_dict"));

  tools::TrainConfig cfg = tiny.config("run", "simple_cnn", 1);
  tools::run_train(cfg);
  REQUIRE_THROWS_WITH(tools::load_trained(tiny.run("run").string(), {}, config),
                      Catch::Contains("holds its own config"));
  // Weights for another model than the config's: the missing tensor is named.
  tools::TrainConfig mnv2 = tiny.config("x", "mobilenet_v2_cifar");
  REQUIRE_THROWS_WITH(tools::load_trained(kPth + "simple_cnn.pth", {}, write_config(mnv2, dir)),
                      Catch::Contains("features.0.0.weight"));
}

TEST_CASE("a malicious .pth given to predict is refused and runs nothing") {
  tests::TinyRun tiny("pth_hostile");
  tests::TempDir dir("osprey_pth_hostile");
  const std::string marker = "/tmp/osprey_pth_reduce_ran";
  fs::remove(marker);
  REQUIRE_THROWS_WITH(
      tools::load_trained(kPth + "reduce_system.pth", {}, write_config(tiny.config("x"), dir)),
      Catch::Contains("reduce_system.pth"));
  REQUIRE_FALSE(fs::exists(marker));
}
