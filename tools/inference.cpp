#include "tools/inference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "data/image.h"
#include "engine/checkpoint.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "engine/pth.h"
#include "engine/state_dict.h"
#include "kernels/cpu/threads.h"
#include "tools/train.h"

namespace osprey::tools {

namespace {

// ModelInput::from_json converts with int(...), which would wrap 2^32 + 28 to 28: the sizes
// from the file are checked as JSON integers first.
void check_input_sizes(const nlohmann::json& j, const std::string& what) {
  auto ok = [](const nlohmann::json& v) {
    return v.is_number_unsigned() && v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= (1u << 16);
  };
  OSPREY_CHECK(j.is_object(), what, " is not a JSON object");
  for (const char* key : {"h", "w", "c", "classes"})
    OSPREY_CHECK(j.contains(key) && ok(j.at(key)), what, ": '", key,
                 "' must be an integer in [1, 65536]");
  OSPREY_CHECK(j.contains("source") && j.at("source").is_array() && j.at("source").size() == 3,
               what, ": 'source' must be [h, w, c]");
  for (const auto& v : j.at("source"))
    OSPREY_CHECK(ok(v), what, ": 'source' values must be integers in [1, 65536]");
}

// A checkpoint Osprey wrote: it holds its config and model input.
void load_osprey_checkpoint(TrainedModel& tm, const CheckpointMetadata& meta,
                            const std::vector<std::string>& overrides) {
  tm.cfg = config_from_checkpoint(tm.checkpoint);
  for (const std::string& s : overrides) apply_override(tm.cfg, s);
  const std::string file = "checkpoint '" + printable(tm.checkpoint) + "'";
  auto it = meta.find("input");
  OSPREY_CHECK(it != meta.end(), file,
               " does not describe its model input (written by an older osprey?)");
  check_json_depth(it->second, file + ": metadata 'input'");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  OSPREY_CHECK(!j.is_discarded(), file, " has an unreadable input");
  check_input_sizes(j, file + ": metadata 'input'");
  tm.input = ModelInput::from_json(j);
  OSPREY_CHECK(tm.input.class_names.size() == size_t(tm.input.num_classes), file, ": ",
               tm.input.class_names.size(), " class names for ", tm.input.num_classes, " classes");
  cpu::set_num_threads(tm.cfg.threads);
  tm.model = create_model_for(tm.cfg, tm.input);
  load_checkpoint(tm.checkpoint, *tm.model, nullptr);
}

// A bare state_dict (a PyTorch .pth, or safetensors without Osprey's metadata): the config
// names the model and the data, whose classes and image shape size it, as in training.
void load_state_dict_file(TrainedModel& tm, const SafeTensorsFile& file,
                          const std::string& config_file,
                          const std::vector<std::string>& overrides) {
  tm.cfg = load_config_file(config_file);
  for (const std::string& s : overrides) apply_override(tm.cfg, s);
  validate(tm.cfg);
  DataSplits data = load_data(tm.cfg);
  check_splits(data);
  Pipelines pipes = make_pipelines(tm.cfg, {data.test.h, data.test.w, data.test.c});
  tm.input = model_input(data, pipes);
  cpu::set_num_threads(tm.cfg.threads);
  tm.model = create_model_for(tm.cfg, tm.input);
  load_torch_state_dict(tm.model->params(), file);
}

// What load_osprey_checkpoint needs first; a PyTorch state_dict never has it.
bool is_osprey_checkpoint(const CheckpointMetadata& meta) {
  return meta.count("config") != 0;
}

}  // namespace

TrainedModel load_trained(const std::string& run_or_file, const std::vector<std::string>& overrides,
                          const std::string& config_file) {
  TrainedModel tm;
  tm.checkpoint = resolve_checkpoint(run_or_file, TrainConfig{}.runs_dir);
  // Read once: a .pth's tensors are unpickled and copied out on every read.
  const SafeTensorsFile tensors = read_tensor_file(tm.checkpoint);
  const CheckpointMetadata& meta = tensors.metadata();
  const std::string file = "'" + printable(tm.checkpoint) + "'";
  if (is_osprey_checkpoint(meta)) {
    OSPREY_CHECK(config_file.empty(), file,
                 " is an Osprey checkpoint, which holds its own config: --config is for "
                 "PyTorch state_dicts (change the stored config with --set key=value)");
    load_osprey_checkpoint(tm, meta, overrides);
  } else {
    OSPREY_CHECK(!config_file.empty(), file,
                 " is a bare state_dict (a PyTorch .pth or plain safetensors): it does not say "
                 "which model, input size and classes it is for. Give the training config it "
                 "belongs to with --config CONFIG.json (e.g. configs/fashion_simple_cnn.json;"
                 " adjust it with --set key=value)");
    load_state_dict_file(tm, tensors, config_file, overrides);
  }
  // Class names come from data files and folder names; they are shown on terminals and pages.
  for (std::string& name : tm.input.class_names) name = printable(name);
  tm.model->to(resolve_device(tm.cfg.device));
  tm.model->eval();
  tm.net = tm.model->inference_net();
  return tm;
}

Evaluation run_eval(TrainedModel& tm) {
  DataSplits data = load_data(tm.cfg);
  const data::ImageShape& src = tm.input.source;
  OSPREY_CHECK(data.test.h == src.h && data.test.w == src.w && data.test.c == src.c,
               "the test set's images (", data.test.h, "x", data.test.w, "x", data.test.c,
               ") are not the ones the model was trained on (", src.h, "x", src.w, "x", src.c, ")");
  return evaluate(*tm.model, data.test, data::AugmentPipeline::from_json(tm.input.eval_pipeline),
                  tm.input.c, tm.input.num_classes, tm.cfg.eval_batch_size);
}

void print_evaluation(const Evaluation& ev, const ModelInput& input) {
  std::printf("test samples %lld  accuracy %.2f%%  loss %.4f\n", (long long)ev.samples,
              100.0 * ev.accuracy(), ev.loss);
  std::printf("\n%-24s %8s %8s\n", "class", "samples", "accuracy");
  for (int k = 0; k < ev.num_classes; ++k) {
    std::string name = k < int(input.class_names.size()) ? printable(input.class_names[size_t(k)])
                                                         : std::to_string(k);
    std::printf("%-24s %8lld %7.2f%%\n", name.c_str(), (long long)ev.class_count(k),
                100.0 * ev.class_accuracy(k));
  }
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n     ");
  for (int p = 0; p < ev.num_classes; ++p) std::printf(" %6d", p);
  std::printf("\n");
  for (int t = 0; t < ev.num_classes; ++t) {
    std::printf("%4d ", t);
    for (int p = 0; p < ev.num_classes; ++p)
      std::printf(" %6lld", (long long)ev.confusion[size_t(t * ev.num_classes + p)]);
    std::printf("\n");
  }
}

}  // namespace osprey::tools

namespace osprey::tools {

namespace {

// A non-finite score means the weights overflowed on this input (non-finite weights are
// refused when loaded): an error, not an answer with "nan%".
void check_finite_logits(const float* l, int k, const std::string& image) {
  for (int j = 0; j < k; ++j)
    OSPREY_CHECK(std::isfinite(l[j]), "predict: ", image, ": the model's score for class ", j,
                 " is ", l[j],
                 ", not a finite number (the checkpoint's weights overflow on this input)");
}

// names[i] (when given) names image i in messages.
std::vector<Prediction> predict_named(TrainedModel& tm, const std::vector<data::Image>& images,
                                      const std::vector<std::string>& names, int top_k,
                                      float threshold) {
  OSPREY_CHECK(top_k >= 1, "predict: top-k must be >= 1");
  OSPREY_CHECK(threshold >= 0 && threshold <= 1, "predict: the threshold must be in [0, 1]");
  const data::ImageShape& src = tm.input.source;
  // The images become a small dataset in the stored format, so they go through exactly the
  // evaluation pipeline the test set went through.
  data::Dataset ds;
  ds.n = int(images.size()), ds.h = src.h, ds.w = src.w, ds.c = src.c;
  ds.num_classes = tm.input.num_classes;
  ds.labels.assign(images.size(), 0);
  for (const data::Image& original : images) {
    OSPREY_CHECK(original.c == src.c, "predict: an image with ", original.c,
                 " channels for a model trained on ", src.c, " (decode with that many)");
    data::Image img = original;
    if (img.h != src.h || img.w != src.w) img = data::resize_image(img, src.h, src.w);
    ds.pixels.insert(ds.pixels.end(), img.pixels.begin(), img.pixels.end());
  }
  data::AugmentPipeline eval = data::AugmentPipeline::from_json(tm.input.eval_pipeline);
  std::vector<int64_t> idx(images.size());
  std::iota(idx.begin(), idx.end(), 0);
  Tensor x = Tensor::empty({ds.n, tm.input.h, tm.input.w, tm.input.c});
  data::eval_into(eval, ds, idx.data(), ds.n, tm.input.c, x.data<float>());
  Tensor logits = tm.net->forward(x.to(tm.model->device())).to(Device::cpu);
  int k = int(logits.dim(1));
  const Tensor probs = ops::softmax(logits);
  std::vector<Prediction> out;
  for (int i = 0; i < ds.n; ++i) {
    const float* l = logits.data<float>() + int64_t(i) * k;
    check_finite_logits(l, k,
                        i < int(names.size())
                            ? "image " + printable(names[size_t(i)])
                            : "image " + std::to_string(i + 1) + " of " + std::to_string(ds.n));
    const float* p = probs.data<float>() + int64_t(i) * k;
    std::vector<int> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    Prediction pr;
    for (int j = 0; j < std::min(top_k, k); ++j)
      pr.top.emplace_back(order[size_t(j)], p[order[size_t(j)]]);
    pr.uncertain = pr.top[0].second < threshold;
    out.push_back(pr);
  }
  return out;
}

}  // namespace

std::vector<Prediction> predict_images(TrainedModel& tm, const std::vector<data::Image>& images,
                                       int top_k, float threshold) {
  return predict_named(tm, images, {}, top_k, threshold);
}

std::vector<Prediction> run_predict(TrainedModel& tm, const std::vector<std::string>& paths,
                                    int top_k, float threshold) {
  std::vector<data::Image> images;
  for (const std::string& path : paths) images.push_back(data::load_image(path, tm.input.source.c));
  std::vector<Prediction> out = predict_named(tm, images, paths, top_k, threshold);
  for (size_t i = 0; i < out.size(); ++i) out[i].path = paths[i];
  return out;
}

}  // namespace osprey::tools
