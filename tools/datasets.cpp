#include "tools/datasets.h"

#include <algorithm>
#include <filesystem>

#include "data/cifar10.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/tmnist.h"
#include "models/registry.h"
#include "tools/dataset_sources.h"

namespace osprey::tools {
namespace {

void truncate(data::Dataset& ds, int64_t limit) {
  if (limit <= 0 || limit >= ds.n) return;
  ds.n = int(limit);
  ds.pixels.resize(size_t(limit * ds.image_size()));
  ds.labels.resize(size_t(limit));
}

nlohmann::json augmentation_list(const nlohmann::json& augment) {
  if (augment.is_null()) return nlohmann::json::array();
  if (augment.is_string()) {
    std::string name = augment.get<std::string>();
    if (name == "seed") return data::seed_pipeline_json();
    if (name == "cifar") return data::cifar_pipeline_json();
    if (name == "none") return nlohmann::json::array();
    fail("config: unknown augment preset '", name, "' (valid: seed, cifar, none, or a list)");
  }
  return augment;
}

}  // namespace

DataSplits load_data(const TrainConfig& cfg) {
  namespace fs = std::filesystem;
  DataSplits s;
  const std::string& d = cfg.data_dir;
  // A dataset that is not there: the message says the command that gets it.
  if (const std::string hint = missing_dataset_hint(cfg.dataset, d); !hint.empty()) fail(hint);
  if (cfg.dataset == "fashion-mnist" || cfg.dataset == "mnist") {
    s.train = data::load_idx_dataset(d, true, cfg.dataset);
    s.test = data::load_idx_dataset(d, false, cfg.dataset);
  } else if (cfg.dataset == "cifar10") {
    s.train = data::load_cifar10(d, true);
    s.test = data::load_cifar10(d, false);
  } else if (cfg.dataset == "tmnist") {
    // A folder (osprey data typefaces) brings its own font-level split; a file is split here.
    if (fs::is_directory(d)) {
      s.train = data::load_tmnist((fs::path(d) / "train.csv").string());
      s.test = data::load_tmnist((fs::path(d) / "test.csv").string());
    } else {
      std::tie(s.train, s.test) =
          data::split_holdout(data::load_tmnist(d), cfg.test_fraction, cfg.seed);
    }
  } else if (cfg.dataset == "image_folder") {
    int c = cfg.channels == 0 ? 3 : cfg.channels;
    if (fs::is_directory(fs::path(d) / "train") && fs::is_directory(fs::path(d) / "test")) {
      s.train = data::load_image_folder((fs::path(d) / "train").string(), c, cfg.image_size,
                                        cfg.image_size);
      s.test = data::load_image_folder((fs::path(d) / "test").string(), c, s.train.h, s.train.w);
      OSPREY_CHECK(s.train.class_names == s.test.class_names, "image folder '", d,
                   "': train/ and test/ have different class subfolders");
    } else {
      std::tie(s.train, s.test) =
          data::split_holdout(data::load_image_folder(d, c, cfg.image_size, cfg.image_size),
                              cfg.test_fraction, cfg.seed);
    }
  } else if (cfg.dataset == "custom") {
    fail("dataset 'custom' is a program's own data, given to run_train in TrainOptions::data");
  } else {
    fail("unknown dataset '", cfg.dataset,
         "' (valid: fashion-mnist, mnist, cifar10, tmnist, image_folder, custom)");
  }
  truncate(s.train, cfg.limit_train);
  truncate(s.test, cfg.limit_test);
  OSPREY_CHECK(s.train.n > 0 && s.test.n > 0, "dataset '", cfg.dataset, "' in '", d,
               "' has an empty train or test split");
  s.num_classes = std::max(s.train.num_classes, s.test.num_classes);
  check_splits(s);
  return s;
}

void check_splits(const DataSplits& s) {
  OSPREY_CHECK(s.train.n > 0 && s.test.n > 0, "data: an empty train or test split (", s.train.n,
               " and ", s.test.n, " images)");
  OSPREY_CHECK(s.test.h == s.train.h && s.test.w == s.train.w && s.test.c == s.train.c,
               "train and test images differ in size: ", s.train.h, "x", s.train.w, "x", s.train.c,
               " vs ", s.test.h, "x", s.test.w, "x", s.test.c);
  OSPREY_CHECK(s.num_classes >= 1, "data: num_classes is ", s.num_classes);
  for (const data::Dataset* ds : {&s.train, &s.test}) {
    OSPREY_CHECK(ds->n >= 0 && ds->h > 0 && ds->w > 0 && ds->c > 0 &&
                     int64_t(ds->pixels.size()) == int64_t(ds->n) * ds->image_size() &&
                     int64_t(ds->labels.size()) == ds->n,
                 "data: split '", ds->name, "' has ", ds->pixels.size(), " pixel bytes and ",
                 ds->labels.size(), " labels for ", ds->n, " images of ", ds->h, "x", ds->w, "x",
                 ds->c);
    for (int64_t i = 0; i < ds->n; ++i)
      OSPREY_CHECK(ds->labels[size_t(i)] >= 0 && ds->labels[size_t(i)] < s.num_classes,
                   "data: image ", i, " of split '", ds->name, "' has label ",
                   ds->labels[size_t(i)], ", outside [0, ", s.num_classes, ")");
  }
}

Pipelines make_pipelines(const TrainConfig& cfg, data::ImageShape source) {
  Pipelines p;
  p.source = source;
  p.channels = cfg.channels == 0 ? source.c : cfg.channels;
  OSPREY_CHECK(p.channels == source.c || (source.c == 1 && p.channels == 3), "config: channels ",
               cfg.channels, " does not fit images with ", source.c, " channels (only 1 -> 3)");
  data::AugmentPipeline train = data::AugmentPipeline::from_json(augmentation_list(cfg.augment));
  if (!train.has_normalize()) {
    size_t n = cfg.mean.size();
    OSPREY_CHECK(n == 1 || int(n) == p.channels, "config: mean/std have ", n,
                 " values but the model sees ", p.channels, " channels");
    train = train.with_normalize(cfg.mean, cfg.std);
  }
  p.eval = train.eval_pipeline();
  p.train = std::make_shared<const data::AugmentPipeline>(std::move(train));
  data::ImageShape in{source.h, source.w, p.channels};
  p.output = p.train->output_shape(in);
  data::ImageShape eval_out = p.eval.output_shape(in);
  OSPREY_CHECK(eval_out.h == p.output.h && eval_out.w == p.output.w,
               "the augmentation's evaluation counterpart makes ", eval_out.h, "x", eval_out.w,
               " images but training makes ", p.output.h, "x", p.output.w);
  return p;
}

nlohmann::json ModelInput::to_json() const {
  return {{"h", h},
          {"w", w},
          {"c", c},
          {"classes", num_classes},
          {"class_names", class_names},
          {"source", {source.h, source.w, source.c}},
          {"eval_pipeline", eval_pipeline}};
}

ModelInput ModelInput::from_json(const nlohmann::json& j) {
  ModelInput m;
  try {
    m.h = j.at("h"), m.w = j.at("w"), m.c = j.at("c"), m.num_classes = j.at("classes");
    m.class_names = j.at("class_names").get<std::vector<std::string>>();
    auto src = j.at("source").get<std::vector<int>>();
    OSPREY_CHECK(src.size() == 3, "source shape needs 3 values");
    m.source = {src[0], src[1], src[2]};
    m.eval_pipeline = j.at("eval_pipeline");
  } catch (const nlohmann::json::exception& e) {
    fail("bad model input description: ", e.what());
  }
  return m;
}

ModelInput model_input(const DataSplits& data, const Pipelines& pipes) {
  ModelInput m;
  m.h = pipes.output.h, m.w = pipes.output.w, m.c = pipes.output.c;
  m.num_classes = data.num_classes;
  m.class_names = data.train.class_names.size() >= size_t(data.num_classes) ? data.train.class_names
                                                                            : data.test.class_names;
  m.class_names.resize(size_t(data.num_classes));
  for (int k = 0; k < data.num_classes; ++k)
    if (m.class_names[size_t(k)].empty()) m.class_names[size_t(k)] = std::to_string(k);
  m.source = pipes.source;
  m.eval_pipeline = pipes.eval.to_json();
  return m;
}

std::unique_ptr<Model> create_model_for(const TrainConfig& cfg, const ModelInput& input) {
  models::ModelSpec spec;
  spec.name = cfg.model;
  spec.in_channels = input.c;
  spec.height = input.h;
  spec.width = input.w;
  spec.num_classes = input.num_classes;
  spec.width_mult = cfg.width_mult;
  spec.dropout = cfg.dropout;
  spec.seed = cfg.seed;
  return models::create_model(spec);
}

data::LoaderOptions loader_options(const TrainConfig& cfg, const Pipelines& pipes) {
  data::LoaderOptions lo;
  lo.batch_size = cfg.batch_size;
  lo.shuffle = true;
  lo.seed = cfg.seed;
  lo.augment = pipes.train;
  lo.channels = pipes.channels;
  lo.augment_threads = cfg.augment_threads;
  return lo;
}

}  // namespace osprey::tools
