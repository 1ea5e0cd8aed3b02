// Checkpoints: round trip, refusal of damaged files, and resume determinism (train k steps,
// save, resume, train on == an uninterrupted run, bit for bit).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "engine/state_dict.h"
#include "models/registry.h"
#include "tests/test_support.h"
#include "tests/tiny_run.h"
#include "tools/train.h"

using namespace osprey;
namespace fs = std::filesystem;

namespace {

using tests::TinyRun;

using tests::require_identical_tensors;

}  // namespace

TEST_CASE("resuming mid-epoch gives exactly the uninterrupted run") {
  for (std::string model : {"simple_cnn", "mobilenet_v2_cifar"}) {
    for (std::string optimizer : {"adam", "sgd"}) {
      INFO(model << " " << optimizer);
      TinyRun run(model + optimizer);
      tools::TrainConfig full = run.config("full", model);
      full.optimizer = optimizer;
      full.lr = optimizer == "sgd" ? 0.05f : 1e-3f;
      full.schedule = "onecycle";
      tools::run_train(full);

      tools::TrainConfig part = full;
      part.name = "part";
      part.stop_after_steps = 4;  // inside the first epoch
      tools::run_train(part);
      tools::TrainConfig resumed = tools::config_from_checkpoint(run.last("part"));
      REQUIRE(resumed.stop_after_steps == 4);
      resumed.stop_after_steps = 0;
      tools::run_train(resumed, tools::TrainOptions::resuming(run.last("part")));
      require_identical_tensors(run.last("full"), run.last("part"));
    }
  }
}

TEST_CASE("a checkpoint round-trips into a fresh model with identical outputs") {
  TinyRun run("rt");
  tools::TrainConfig cfg = run.config("rt", "mobilenet_v2_cifar");
  cfg.epochs = 1;
  tools::run_train(cfg);
  models::ModelSpec spec;
  spec.name = "mobilenet_v2_cifar";
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 4,
  spec.width_mult = 0.25f;
  auto a = models::create_model(spec);
  spec.seed = 77;  // a different initialisation, overwritten by the load
  auto b = models::create_model(spec);
  load_checkpoint(run.last("rt"), *a, nullptr);
  load_checkpoint(run.last("rt"), *b, nullptr);
  a->eval(), b->eval();
  autograd::NoGradGuard no_grad;
  Tensor x = Tensor::full({2, 12, 12, 1}, 0.3f);
  REQUIRE(a->forward(x).to_vector() == b->forward(x).to_vector());
  CheckpointMetadata meta = read_checkpoint_metadata(run.last("rt"));
  REQUIRE(meta.at("epoch") == "1");
  REQUIRE(meta.at("model") == "mobilenet_v2_cifar");
}

TEST_CASE("damaged or mismatched checkpoints are refused and change nothing") {
  TinyRun run("bad");
  tools::TrainConfig cfg = run.config("bad", "simple_cnn");
  cfg.epochs = 1;
  tools::run_train(cfg);
  std::string good = run.last("bad");
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string truncated = (run.dir / "truncated.safetensors").string();
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);

  models::ModelSpec spec;
  spec.in_channels = 1, spec.height = spec.width = 12, spec.num_classes = 4;
  auto model = models::create_model(spec);
  std::vector<float> before = model->params().flat_data().to_vector();
  REQUIRE_THROWS_WITH(load_checkpoint(truncated, *model, nullptr),
                      Catch::Contains("truncated.safetensors"));
  spec.num_classes = 5;
  auto other = models::create_model(spec);
  REQUIRE_THROWS_WITH(load_checkpoint(good, *other, nullptr),
                      Catch::Contains("fc2.weight") && Catch::Contains("[5, 128]"));
  REQUIRE(model->params().flat_data().to_vector() == before);
  REQUIRE_THROWS_WITH(tools::resolve_checkpoint((run.dir / "nope").string(), cfg.runs_dir),
                      Catch::Contains("no checkpoint"));
}

TEST_CASE("fine-tuning from a state_dict with another class count replaces only the classifier") {
  models::ModelSpec spec;
  spec.name = "mobilenet_v2";
  spec.in_channels = 3, spec.height = spec.width = 32, spec.num_classes = 1000;
  spec.width_mult = 0.25f;
  auto pretrained = models::create_model(spec);
  fs::path file = fs::temp_directory_path() / ("osprey_pretrained_" + std::to_string(::getpid()));
  SafeTensorsWriter w;
  add_torch_state_dict(pretrained->params(), w);
  w.write(file.string());

  spec.num_classes = 10;
  spec.seed = 3;
  auto model = models::create_model(spec);
  std::vector<float> fresh_fc = model->params().find("classifier.1.weight")->value.to_vector();
  auto replaced = load_pretrained_state_dict(model->params(), SafeTensorsFile::read(file.string()),
                                             model->classifier_prefixes());
  REQUIRE(replaced == std::vector<std::string>{"classifier.1.weight", "classifier.1.bias"});
  REQUIRE(model->params().find("classifier.1.weight")->value.to_vector() == fresh_fc);
  for (const char* name : {"features.0.0.weight", "features.17.conv.1.0.weight"})
    REQUIRE(model->params().find(name)->value.to_vector() ==
            pretrained->params().find(name)->value.to_vector());
  REQUIRE(model->params().find_buffer("features.18.1.running_var")->value.to_vector() ==
          pretrained->params().find_buffer("features.18.1.running_var")->value.to_vector());

  // Anything else that does not fit is an error naming the tensor.
  spec.width_mult = 0.5f;
  auto wider = models::create_model(spec);
  REQUIRE_THROWS_WITH(
      load_pretrained_state_dict(wider->params(), SafeTensorsFile::read(file.string()),
                                 wider->classifier_prefixes()),
      Catch::Contains("features.0.0.weight"));
  fs::remove(file);
}
